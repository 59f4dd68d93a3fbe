"""Request and response shapes of retaliation check-ins (the reporter's side)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from upstander.kit.schemas import RequestModel, ResponseModel


class CheckinAnswer(RequestModel):
    retaliation: bool = Field(
        description=(
            "Whether you have faced retaliation since you reported (suspension, demotion, "
            "negative appraisal, intimidation, blacklisting...)."
        ),
        examples=[True],
    )
    details: str | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="What happened, if you want to say; sealed under your case's key.",
        examples=["My shifts were cut after the case closed."],
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"retaliation": True, "details": "My shifts were cut."}]}
    )


class CheckinOut(ResponseModel):
    id: uuid.UUID = Field(examples=["1c9e7d0f-5a52-4f0e-4a55-9d432b7b3c10"])
    offset_days: int = Field(description="Days after closing it was asked.", examples=[30])
    due_at: datetime = Field(examples=["2027-03-26T09:30:00Z"])
    asked_at: datetime = Field(validation_alias="created_at", examples=["2027-03-26T09:35:00Z"])
    answered_at: datetime | None = Field(default=None, examples=[None])
    retaliation: bool | None = Field(default=None, examples=[None])
    details: str | None = Field(default=None, examples=[None])
    follow_up_opened: bool = Field(
        default=False,
        description="A yes opened a new case about the retaliation, handled with priority.",
        examples=[False],
    )


class CheckinList(ResponseModel):
    items: list[CheckinOut]
