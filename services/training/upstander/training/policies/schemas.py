"""Request and response models of policies, versions and acknowledgments."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from upstander.kit.schemas import RequestModel, ResponseModel


class PolicyCreate(RequestModel):
    title: str = Field(min_length=1, max_length=200, examples=["Anti-harassment policy"])
    summary: str = Field("", max_length=4000, examples=["How we keep each other safe."])


class PolicyOut(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    title: str = Field(examples=["Anti-harassment policy"])
    summary: str
    current_version: int | None = Field(
        examples=[2], description="The version people must acknowledge; null until published."
    )
    active: bool
    created_at: datetime
    updated_at: datetime


class VersionCreate(RequestModel):
    body: str = Field(min_length=1, max_length=200_000, examples=["# Our policy\n..."])
    changes: str = Field("", max_length=4000, examples=["Adds the anonymous channel."])
    due_days: int = Field(
        ge=0, le=365, examples=[14], description="Days each person has to acknowledge it."
    )


class VersionOut(ResponseModel):
    id: uuid.UUID
    policy_id: uuid.UUID
    number: int = Field(examples=[2])
    body: str
    changes: str
    due_days: int = Field(examples=[14])
    published_at: datetime
    published_by: str


class AcknowledgmentOut(ResponseModel):
    id: uuid.UUID
    policy_id: uuid.UUID
    version_number: int = Field(examples=[2])
    person_id: uuid.UUID
    acknowledged_at: datetime
