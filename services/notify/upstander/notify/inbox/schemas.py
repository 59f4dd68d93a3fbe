"""Response models of the in-app inbox (its routes take no request bodies yet)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from upstander.kit.schemas import ResponseModel


class InboxMessageOut(ResponseModel):
    id: uuid.UUID = Field(examples=["6f1c2d1e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"])
    kind: str = Field(examples=["case.assigned"], description="The event this message is about.")
    subject: str = Field(examples=["A case was assigned to you"])
    body: str = Field(examples=["Case 2025-0042 needs acknowledgment by 22 January."])
    link: str | None = Field(
        examples=["/cases/v1/cases/0b8e7f6a-5d4c-4b3a-8f2e-1d0c9b8a7f6e"],
        description="Where to look; access is checked there, not here.",
    )
    read_at: datetime | None = Field(examples=[None], description="Null while unread.")
    created_at: datetime = Field(examples=["2025-01-15T09:30:00Z"])


class UnreadCount(ResponseModel):
    unread: int = Field(examples=[3], description="Messages in your inbox not yet read.")


class ReadAllResult(ResponseModel):
    marked_read: int = Field(examples=[3], description="Messages this call marked as read.")
