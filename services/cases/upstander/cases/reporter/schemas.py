"""What a reporter may see of their case: its state and deadlines, nothing about handlers."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from upstander.cases.models import CaseStatus
from upstander.kit.schemas import ResponseModel


class ReporterCaseOut(ResponseModel):
    number: str = Field(examples=["DEMO-2026-0001"])
    status: CaseStatus = Field(examples=["new"])
    received_at: datetime = Field(examples=["2026-11-24T09:30:00Z"])
    acknowledge_by: datetime = Field(
        description="Receipt will be acknowledged by then.", examples=["2026-12-01T09:30:00Z"]
    )
    feedback_by: datetime = Field(
        description="You will hear what is being done by then.",
        examples=["2027-03-01T09:30:00Z"],
    )
    acknowledged_at: datetime | None = Field(default=None, examples=[None])
    updated_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])
