"""Request and response shapes of the conversation, for handlers and for the reporter."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from upstander.cases.models import AuthorKind
from upstander.kit.schemas import RequestModel, ResponseModel

BODY_MAX = 10_000


class MessageIn(RequestModel):
    body: str = Field(
        min_length=1,
        max_length=BODY_MAX,
        description="The message, plain text.",
        examples=["Thank you for your report. Could you tell us when this happened?"],
    )


class HandlerMessageIn(MessageIn):
    is_feedback: bool = Field(
        default=False,
        description=(
            "This message tells the reporter what is being done about their report: it "
            "counts as the feedback owed by `feedback_by`, and closing the case needs it."
        ),
        examples=[False],
    )


class MessageOut(ResponseModel):
    """A message as the case's handlers see it."""

    id: uuid.UUID = Field(examples=["1c9d8f0e-6b1a-4f55-9a3e-2d7c5b4a3f21"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    author: AuthorKind = Field(validation_alias="author_kind", examples=["reporter"])
    author_person_id: uuid.UUID | None = Field(
        default=None, description="The handler who wrote it, if a person.", examples=[None]
    )
    body: str | None = Field(
        description="Null once the case's data was destroyed.",
        examples=["I can add the date: it was on the 20th."],
    )
    is_feedback: bool = Field(default=False, examples=[False])
    created_at: datetime = Field(examples=["2026-11-24T10:02:00Z"])


class MessagePage(ResponseModel):
    items: list[MessageOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[None],
    )


class ReporterMessageOut(ResponseModel):
    """A message as the reporter sees it: handlers are only ever "handler", never named."""

    id: uuid.UUID = Field(examples=["1c9d8f0e-6b1a-4f55-9a3e-2d7c5b4a3f21"])
    author: AuthorKind = Field(validation_alias="author_kind", examples=["handler"])
    body: str | None = Field(examples=["Thank you for your report."])
    created_at: datetime = Field(examples=["2026-11-24T10:02:00Z"])


class ReporterMessagePage(ResponseModel):
    items: list[ReporterMessageOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[None],
    )
