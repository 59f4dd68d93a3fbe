"""Response shapes of a case file, as handlers read it."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from upstander.cases.models import CaseStatus, Priority, Severity
from upstander.kit.schemas import ResponseModel


class CaseOut(ResponseModel):
    """A case as its handlers see it. `version` is also the `ETag` of `GET /cases/{id}`."""

    id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    number: str = Field(
        description="Per organisation and year, e.g. `DEMO-2026-0001`.",
        examples=["DEMO-2026-0001"],
    )
    status: CaseStatus = Field(examples=["new"])
    severity: Severity | None = Field(default=None, examples=[None])
    priority: Priority = Field(examples=["normal"])
    categories: list[str] = Field(examples=[["sexual_harassment"]])
    report_id: uuid.UUID = Field(
        description="The intake report that opened the case.",
        examples=["0b8f7a52-8d0e-4b2c-a1f3-6c9f2f7e3d10"],
    )
    received_at: datetime = Field(examples=["2026-11-24T09:30:00Z"])
    acknowledge_by: datetime = Field(
        description="Receipt must be acknowledged by then (7 days).",
        examples=["2026-12-01T09:30:00Z"],
    )
    feedback_by: datetime = Field(
        description="Feedback is due by then (3 months after the acknowledgment deadline).",
        examples=["2027-03-01T09:30:00Z"],
    )
    acknowledged_at: datetime | None = Field(default=None, examples=[None])
    closed_at: datetime | None = Field(default=None, examples=[None])
    version: int = Field(examples=[1])
    created_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])
    updated_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])

    model_config = ConfigDict(from_attributes=True)


class CasePage(ResponseModel):
    items: list[CaseOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=["WyIyMDI2LTExLTI0VDA5OjMwOjAyKzAwOjAwIiwgIjVmMGM2YThlIl0"],
    )
