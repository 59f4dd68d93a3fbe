"""Request and response models of requirements, presets and exemptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from upstander.kit.schemas import RequestModel, ResponseModel

AUDIENCE_PATTERN = (
    r"^(everyone|supervisors|non_supervisors|leadership|role:[a-z_]{1,64}|location:[A-Za-z]{2,64})$"
)
Audience = Annotated[str, StringConstraints(strip_whitespace=True, pattern=AUDIENCE_PATTERN)]
StateCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2,64}$")
]

AUDIENCE_DESCRIPTION = (
    "`everyone`, `supervisors`, `non_supervisors`, `leadership`, `role:<role>` or "
    "`location:<state>`."
)


class RequirementCreate(RequestModel):
    course_id: uuid.UUID = Field(examples=["6f1c2d1e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"])
    name: str = Field(min_length=1, max_length=200, examples=["Supervisors: annual refresher"])
    audience: Audience = Field(examples=["supervisors"], description=AUDIENCE_DESCRIPTION)
    location: StateCode | None = Field(
        None, examples=["CA"], description="Only people working in this state; null: everywhere."
    )
    due_within_days: int = Field(
        ge=0,
        le=3650,
        examples=[183],
        description="Days after hire (or promotion, for supervisors) to complete it.",
    )
    recurrence_months: int | None = Field(
        None, ge=1, le=240, examples=[24], description="Redo every so many months; null: once."
    )
    min_minutes: int | None = Field(
        None, ge=1, le=10_000, examples=[120], description="Shortest completion that counts."
    )
    interactive_required: bool = Field(False, examples=[False])
    effective_from: datetime | None = Field(
        None,
        examples=["2026-01-01T00:00:00Z"],
        description="Nobody is due before this plus `due_within_days`; default: now.",
    )


class RequirementUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    due_within_days: int | None = Field(None, ge=0, le=3650, examples=[90])
    recurrence_months: int | None = Field(None, ge=1, le=240, examples=[12])
    min_minutes: int | None = Field(None, ge=1, le=10_000)
    interactive_required: bool | None = None
    active: bool | None = Field(None, description="`false` retires the requirement.")


class RequirementOut(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    course_id: uuid.UUID
    name: str = Field(examples=["California SB 1343: supervisors"])
    audience: str = Field(examples=["supervisors"])
    location: str | None = Field(examples=["CA"])
    due_within_days: int = Field(examples=[183])
    recurrence_months: int | None = Field(examples=[24])
    min_minutes: int | None = Field(examples=[120])
    interactive_required: bool = Field(examples=[False])
    effective_from: datetime
    preset_key: str | None = Field(examples=["california:supervisors"])
    active: bool = Field(examples=[True])
    version: int = Field(examples=[1])
    created_at: datetime
    updated_at: datetime


class PresetRule(ResponseModel):
    key: str = Field(examples=["california:supervisors"])
    name: str
    audience: str
    location: str | None
    course_title: str
    course_minutes: int
    due_within_days: int
    recurrence_months: int | None
    min_minutes: int | None
    interactive_required: bool


class PresetOut(ResponseModel):
    key: str = Field(examples=["california"])
    name: str = Field(examples=["California SB 1343"])
    description: str
    rules: list[PresetRule]


class PresetList(ResponseModel):
    items: list[PresetOut]


class PresetAdoption(ResponseModel):
    preset: str = Field(examples=["california"])
    requirements: list[RequirementOut]
    created_courses: list[uuid.UUID] = Field(description="Courses the adoption added.")
    created_requirements: int = Field(examples=[2], description="0 when adopted before.")


class ExemptionCreate(RequestModel):
    person_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=500, examples=["Trained by previous employer"])


class ExemptionOut(ResponseModel):
    id: uuid.UUID
    requirement_id: uuid.UUID
    person_id: uuid.UUID
    reason: str
    granted_by: str
    created_at: datetime
