"""Response model of the send log: what was sent, to whom, how, and the outcome; no content."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, computed_field

from upstander.kit.schemas import ResponseModel


class DeliveryOut(ResponseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    kind: str = Field(examples=["case.opened"], description="The event the notice was about.")
    channel: str = Field(examples=["email"], description="inbox, email or webhook")
    person_id: uuid.UUID | None = Field(description="The staff recipient, if a person.")
    webhook_id: uuid.UUID | None = Field(description="The endpoint, for webhook deliveries.")
    status: str = Field(
        examples=["sent"],
        description="pending, batched (waiting for the daily digest), failed (will retry), "
        "sent, dead",
    )
    attempts: int
    error: str | None = Field(examples=[None])
    next_attempt_at: datetime | None = Field(
        description="When the next try is due (also the end of quiet hours, or the digest)."
    )
    sent_at: datetime | None
    created_at: datetime
    recipient_hash: str | None = Field(None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recipient(self) -> Literal["person", "webhook", "reporter"]:
        """Who received it; a reporter's address is never kept (only its hash, not shown)."""
        if self.person_id is not None:
            return "person"
        return "webhook" if self.webhook_id is not None else "reporter"
