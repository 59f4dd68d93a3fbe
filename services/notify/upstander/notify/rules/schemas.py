"""Request and response models of the rules API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.notify.rules.defaults import RECIPIENT_PATTERN, NoticeChannel

RecipientSpec = Annotated[
    str, StringConstraints(min_length=1, max_length=40, pattern=RECIPIENT_PATTERN)
]
EVENT_TYPE_PATTERN = r"^upstander\.[a-z0-9_.*?\[\]-]{1,118}$"


class RuleIn(RequestModel):
    recipients: list[RecipientSpec] = Field(
        max_length=10,
        examples=[["case_handlers", "role:admin"]],
        description=(
            "`role:<role>`, `case_handlers` (the case's route group and assigned handlers), "
            "`supervisor_of_subject` or `person_self`. Empty: nobody is told."
        ),
    )
    channels: list[NoticeChannel] = Field(max_length=2, examples=[["inbox", "email"]])
    urgent: bool = Field(False, description="Urgent emails are not held back by quiet hours.")


class RuleOut(ResponseModel):
    event_type: str = Field(examples=["upstander.case.opened"])
    recipients: list[str] = Field(examples=[["case_handlers"]])
    channels: list[str] = Field(examples=[["inbox", "email"]])
    urgent: bool
    source: Literal["default", "org"] = Field(
        description="`org` when your org overrides the shipped default."
    )


class RuleList(ResponseModel):
    items: list[RuleOut]
