"""Request and response shapes of interim measures and corrective actions."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import ConfigDict, Field

from upstander.cases.models import ActionStatus, MeasureAffects, MeasureKind
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
    id: uuid.UUID = Field(examples=["7d0f5a52-4f0e-4a55-9d43-2b7b3c1c9e10"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    kind: MeasureKind
    affects: MeasureAffects
    reporter_consented: bool = Field(examples=[False])
    starts_on: date = Field(examples=["2026-11-25"])
    ends_on: date | None = Field(examples=["2027-01-31"])
    approved_by: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    notes: str | None = Field(examples=["Separate shifts at the field office."])
    created_by: str = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    created_at: datetime = Field(examples=["2026-11-24T10:00:00Z"])


class MeasureList(ResponseModel):
    items: list[MeasureOut]


class ActionIn(RequestModel):
    description: str = Field(
        min_length=1,
        max_length=TEXT_MAX,
        description="Sealed under the case's key.",
        examples=["Supervisor training for the field office leads."],
    )
    owner_person_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "Who sees to it: an active person of your organisation with no conflict of "
            "interest on the case (409 `conflict-of-interest` otherwise)."
        ),
        examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"],
    )
    due_at: datetime = Field(examples=["2027-01-15T17:00:00Z"])


class ActionUpdate(RequestModel):
    """Any of the fields; absent ones keep their value. `status` moves `open → in_progress →
    done`, or to `cancelled`; `done` and `cancelled` are final."""

    description: str | None = Field(
        default=None, min_length=1, max_length=TEXT_MAX, examples=["Training for all leads."]
    )
    owner_person_id: uuid.UUID | None = Field(
        default=None, examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"]
    )
    due_at: datetime | None = Field(default=None, examples=["2027-02-01T17:00:00Z"])
    status: ActionStatus | None = Field(default=None, examples=["in_progress"])

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "in_progress", "due_at": "2027-02-01T17:00:00Z"}]
        }
    )


class ActionOut(ResponseModel):
    id: uuid.UUID = Field(examples=["7a1e0f52-4f0e-4a55-9d43-2b7b3c1c9e10"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    description: str | None = Field(
        description="Null once the case is deleted (crypto-shredded).",
        examples=["Supervisor training for the field office leads."],
    )
    owner_person_id: uuid.UUID | None = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    due_at: datetime = Field(examples=["2027-01-15T17:00:00Z"])
    status: ActionStatus = Field(examples=["open"])
    completed_at: datetime | None = Field(examples=[None])
    created_by: str = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    created_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])
    version: int = Field(description="The action's ETag.", examples=[1])


class ActionList(ResponseModel):
    items: list[ActionOut]
