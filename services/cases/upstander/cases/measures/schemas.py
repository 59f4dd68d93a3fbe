"""Request and response shapes of interim measures and corrective actions."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from upstander.cases.models import MeasureAffects, MeasureKind
from upstander.kit.schemas import RequestModel, ResponseModel

TEXT_MAX = 10_000


class MeasureIn(RequestModel):
    kind: MeasureKind = Field(examples=["no_contact"])
    affects: MeasureAffects = Field(
        default=MeasureAffects.SUBJECT,
        description="Whose work the measure changes; on the reporter, only with consent.",
        examples=["subject"],
    )
    reporter_consented: bool = Field(default=False, examples=[False])
    starts_on: date = Field(examples=["2026-11-25"])
    ends_on: date | None = Field(default=None, examples=["2027-01-31"])
    approved_by: uuid.UUID = Field(
        description="The directory id of the person who approved it.",
        examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"],
    )
    notes: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        description="Sealed under the case's key.",
        examples=["No one-to-one meetings; separate shifts at the field office."],
    )


class MeasureOut(ResponseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    kind: MeasureKind
    affects: MeasureAffects
    reporter_consented: bool
    starts_on: date
    ends_on: date | None
    approved_by: uuid.UUID
    notes: str | None
    created_by: str
    created_at: datetime


class MeasureList(ResponseModel):
    items: list[MeasureOut]


class ActionIn(RequestModel):
    description: str = Field(
        min_length=1,
        max_length=TEXT_MAX,
        description="Sealed under the case's key.",
        examples=["Supervisor training for the field office leads."],
    )
    owner_person_id: uuid.UUID | None = Field(default=None, examples=[None])
    due_at: datetime = Field(examples=["2027-01-15T17:00:00Z"])


class ActionOut(ResponseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    description: str | None
    owner_person_id: uuid.UUID | None
    due_at: datetime
    completed_at: datetime | None
    created_by: str
    created_at: datetime


class ActionList(ResponseModel):
    items: list[ActionOut]
