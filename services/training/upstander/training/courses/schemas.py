"""Request and response models of the course catalogue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.training.external_refs.schemas import ExternalRefIn, RefsOut, refs_field
from upstander.training.models import CourseKind, Language

ActivityIRI = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=2048,
        pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$",
    ),
]

TITLE_EXAMPLE = "Bystander intervention: the five Ds"
DESCRIPTION_EXAMPLE = "Distract, delegate, document, delay, direct: what to do when you see it."
ACTIVITY_EXAMPLE = "https://lms.example.org/xapi/activities/bystander-101"


def _unique(values: list[Any] | None) -> list[Any] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("Values must be unique.")
    return values


class CourseCreate(RequestModel):
    title: str = Field(min_length=1, max_length=200, examples=[TITLE_EXAMPLE])
    kind: CourseKind = Field(examples=[CourseKind.BYSTANDER_INTERVENTION])
    description: str = Field("", max_length=4000, examples=[DESCRIPTION_EXAMPLE])
    duration_minutes: int = Field(
        ge=1, le=10_000, examples=[60], description="How long the course takes, in minutes."
    )
    languages: list[Language] = Field(
        default_factory=lambda: [Language.EN], min_length=1, max_length=2, examples=[["en", "es"]]
    )
    interactive: bool = Field(
        False, examples=[True], description="Whether learners interact (some laws require it)."
    )
    activity_ids: list[ActivityIRI] = Field(
        default_factory=list,
        max_length=50,
        examples=[[ACTIVITY_EXAMPLE]],
        description="xAPI activity IRIs whose completion counts as completing this course.",
    )
    validity_months: int | None = Field(
        None,
        ge=1,
        le=240,
        examples=[24],
        description="How long a completion stays valid; null: it never expires.",
    )
    external_refs: list[ExternalRefIn] = refs_field()

    _unique_lists = field_validator("languages", "activity_ids")(_unique)


class CourseUpdate(RequestModel):
    """Only the fields sent are changed; `validity_months: null` means "never expires"."""

    title: str | None = Field(None, min_length=1, max_length=200, examples=[TITLE_EXAMPLE])
    kind: CourseKind | None = Field(None, examples=[CourseKind.SUPERVISOR_RESPONSE])
    description: str | None = Field(None, max_length=4000, examples=[DESCRIPTION_EXAMPLE])
    duration_minutes: int | None = Field(None, ge=1, le=10_000, examples=[120])
    languages: list[Language] | None = Field(None, min_length=1, max_length=2, examples=[["en"]])
    interactive: bool | None = Field(None, examples=[True])
    activity_ids: list[ActivityIRI] | None = Field(
        None, max_length=50, examples=[[ACTIVITY_EXAMPLE]]
    )
    validity_months: int | None = Field(None, ge=1, le=240, examples=[12])
    active: bool | None = Field(
        None, examples=[True], description="`true` restores an archived course."
    )

    _unique_lists = field_validator("languages", "activity_ids")(_unique)

    @field_validator(
        "title",
        "kind",
        "description",
        "duration_minutes",
        "languages",
        "interactive",
        "activity_ids",
        "active",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Defaults are not validated, so this only refuses an explicit `null`.
        if value is None:
            raise ValueError("This field cannot be null.")
        return value


class CourseOut(ResponseModel):
    id: uuid.UUID = Field(examples=["6f1c2d1e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"])
    org_id: uuid.UUID = Field(examples=["0b8e7f6a-5d4c-4b3a-8f2e-1d0c9b8a7f6e"])
    title: str = Field(examples=[TITLE_EXAMPLE])
    kind: CourseKind = Field(examples=[CourseKind.BYSTANDER_INTERVENTION])
    description: str = Field(examples=[DESCRIPTION_EXAMPLE])
    duration_minutes: int = Field(examples=[60])
    languages: list[Language] = Field(examples=[["en", "es"]])
    interactive: bool = Field(examples=[True])
    activity_ids: list[str] = Field(examples=[[ACTIVITY_EXAMPLE]])
    validity_months: int | None = Field(examples=[24])
    active: bool = Field(examples=[True], description="`false` once archived.")
    version: int = Field(examples=[1], description="Bumped on every change; the ETag.")
    external_refs: RefsOut = Field(
        default_factory=list, description="What other systems call the course."
    )
    created_at: datetime = Field(examples=["2025-01-15T09:30:00Z"])
    updated_at: datetime = Field(examples=["2025-01-15T09:30:00Z"])
