"""Response shape of case statistics: every figure can be suppressed (null + `suppressed`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from upstander.kit.schemas import ResponseModel


class Count(ResponseModel):
    value: int | None = Field(description="Null when suppressed.", examples=[12])
    suppressed: bool = Field(examples=[False])


class CategoryCount(ResponseModel):
    category: str = Field(examples=["sexual_harassment"])
    count: int | None = Field(description="Null when fewer than 5 (suppressed).", examples=[7])
    suppressed: bool = Field(examples=[False])


class StatusCount(ResponseModel):
    status: str = Field(examples=["closed"])
    count: int | None = Field(examples=[None])
    suppressed: bool = Field(examples=[True])


class MonthCount(ResponseModel):
    month: str = Field(description="`YYYY-MM` (UTC) the case was opened.", examples=["2026-11"])
    count: int | None = Field(examples=[9])
    suppressed: bool = Field(examples=[False])


class Median(ResponseModel):
    value: float | None = Field(
        description="Days; null when from fewer than 5 cases.", examples=[2.5]
    )
    cases: int | None = Field(description="How many cases it is over.", examples=[9])
    suppressed: bool = Field(examples=[False])


class DeadlinesMet(ResponseModel):
    met: int | None = Field(description="Cases that met the deadline.", examples=[8])
    cases: int | None = Field(
        description="Cases whose deadline was met or has passed.", examples=[9]
    )
    rate: float | None = Field(description="met / cases, 0 to 1.", examples=[0.8889])
    suppressed: bool = Field(examples=[False])


class CaseStats(ResponseModel):
    from_: datetime | None = Field(
        default=None, alias="from", serialization_alias="from", examples=["2026-01-01T00:00:00Z"]
    )
    to: datetime | None = Field(default=None, examples=[None])
    min_count: int = Field(
        description="Figures from fewer cases than this are suppressed.", examples=[5]
    )
    total: Count
    by_category: list[CategoryCount]
    by_status: list[StatusCount]
    by_month: list[MonthCount]
    median_days_to_acknowledge: Median
    median_days_to_close: Median
    acknowledged_on_time: DeadlinesMet
    feedback_on_time: DeadlinesMet
