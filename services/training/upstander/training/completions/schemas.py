"""Request and response models of completions and CSV imports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.training.external_refs.schemas import ExternalRefIn, RefsOut, refs_field
from upstander.training.models import CompletionSource


class CompletionCreate(RequestModel):
    person_id: uuid.UUID = Field(examples=["2c1d0e9f-8a7b-4c3d-9e0f-1a2b3c4d5e6f"])
    course_id: uuid.UUID = Field(examples=["6f1c2d1e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"])
    completed_at: datetime = Field(examples=["2026-03-14T17:00:00Z"])
    score: float | None = Field(None, ge=0, le=100, examples=[92.5], description="Percent.")
    duration_minutes: int | None = Field(None, ge=0, le=10_000, examples=[120])
    source: Literal["manual"] = Field("manual", examples=["manual"])
    certificate_id: str | None = Field(None, max_length=200, examples=["CERT-2026-0042"])
    external_refs: list[ExternalRefIn] = refs_field()

    @field_validator("completed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("Give a timezone (e.g. `Z`).")
        return value


class CompletionOut(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    person_id: uuid.UUID
    course_id: uuid.UUID
    completed_at: datetime = Field(examples=["2026-03-14T17:00:00Z"])
    score: float | None = Field(examples=[92.5])
    duration_minutes: int | None = Field(examples=[120])
    source: CompletionSource = Field(examples=["manual"])
    certificate_id: str | None = Field(examples=["CERT-2026-0042"])
    statement_id: uuid.UUID | None = None
    external_refs: RefsOut = Field(
        default_factory=list, description="What other systems call the completion."
    )
    created_at: datetime


RejectReason = Literal[
    "unknown_person", "unknown_course", "bad_date", "bad_value", "duplicate", "missing_value"
]


class RejectedRow(ResponseModel):
    row: int = Field(examples=[3], description="Line in the file; the header is row 1.")
    reason: RejectReason = Field(examples=["unknown_person"])
    detail: str = Field(examples=["No person with email x@demo.example."])


class ImportResult(ResponseModel):
    accepted: int = Field(examples=[120], description="New completions recorded.")
    rejected: list[RejectedRow]
