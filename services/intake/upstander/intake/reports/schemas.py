"""Request and response shapes of reports, attachments and receipt verification."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from upstander.intake.forms.schemas import SLUG_PATTERN, Key, Language
from upstander.intake.models import ReportMode
from upstander.kit.schemas import RequestModel

MAX_PEOPLE = 20
DESCRIPTION_MAX = 20_000

Name = Annotated[str, Field(min_length=1, max_length=200, examples=["A volunteer"])]


class InvolvementRole(StrEnum):
    SUBJECT = "subject"  # whose conduct is reported
    AFFECTED = "affected"  # whom it happened to (other than the reporter)
    OTHER = "other"


class _Someone(RequestModel):
    @model_validator(mode="after")
    def _named_or_known(self) -> Self:
        if getattr(self, "person_id", None) is None and getattr(self, "name", None) is None:
            raise ValueError("give a person_id, a name, or both")
        return self


class PersonInvolved(_Someone):
    """Someone involved: a staff member by id, anyone by name, or both."""

    person_id: uuid.UUID | None = Field(
        default=None,
        description="A staff member's id (of this organisation: another's is refused, 422).",
    )
    name: Name | None = None
    role: InvolvementRole | None = Field(default=None, examples=["subject"])


class Witness(_Someone):
    person_id: uuid.UUID | None = Field(default=None, description="A staff member's id.")
    name: Name | None = None


class ReporterContact(RequestModel):
    """How the confidential reporter can be reached. Only the case handlers ever see it."""

    name: Name = Field(examples=["Jordan"])
    contact: str = Field(min_length=1, max_length=320, examples=["jordan@example.org"])


class ReportIn(RequestModel):
    """A report. Who the reporter is depends on `mode`:

    - `anonymous`: nobody knows; no `reporter`; a bearer token, if any, is ignored.
    - `confidential`: only the case handlers know; `reporter` (name and contact) is required.
    - `identified`: the caller's staff token says who; no `reporter`.

    Anonymous and confidential reporters get a receipt code, shown once, to follow up."""

    org: str = Field(
        pattern=SLUG_PATTERN,
        max_length=63,
        description="The organisation's slug.",
        examples=["demo"],
    )
    mode: ReportMode = Field(examples=["anonymous"])
    description: str = Field(
        min_length=1,
        max_length=DESCRIPTION_MAX,
        description="What happened, in the reporter's words.",
        examples=["What happened, in my words."],
    )
    categories: list[Key] = Field(
        default_factory=list,
        max_length=50,
        description="Keys of categories from the organisation's form.",
        examples=[["sexual_harassment"]],
    )
    occurred_at: date | None = Field(default=None, examples=["2026-11-20"])
    location: str | None = Field(default=None, max_length=500, examples=["Field office"])
    people_involved: list[PersonInvolved] = Field(default_factory=list, max_length=MAX_PEOPLE)
    witnesses: list[Witness] = Field(default_factory=list, max_length=MAX_PEOPLE)
    desired_outcome: str | None = Field(default=None, max_length=5_000)
    excluded_person_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_PEOPLE,
        description=(
            "Staff who must never see or hear about this report (people of this organisation: "
            "another's is refused, 422)."
        ),
    )
    reporter: ReporterContact | None = Field(
        default=None,
        validate_default=True,
        description="Confidential reports only (required there).",
    )
    language: Language = Field(
        default=Language.EN, description="The language of the reporter's messages."
    )

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, categories: list[str]) -> list[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("categories must be unique")
        return categories

    @field_validator("reporter")
    @classmethod
    def _reporter_matches_mode(
        cls, reporter: ReporterContact | None, info: ValidationInfo
    ) -> ReporterContact | None:
        mode = info.data.get("mode")  # absent when the mode itself did not validate
        if mode == ReportMode.CONFIDENTIAL and reporter is None:
            raise ValueError("a confidential report needs the reporter's name and contact")
        if mode in (ReportMode.ANONYMOUS, ReportMode.IDENTIFIED) and reporter is not None:
            raise ValueError(f"an {mode.value} report takes no reporter")
        return reporter

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": "demo",
                    "mode": "anonymous",
                    "description": "What happened, in my words.",
                    "categories": ["sexual_harassment"],
                    "occurred_at": "2026-11-20",
                    "location": "Field office",
                    "people_involved": [
                        {"person_id": "0b6c3a2e-8d1f-4a8e-9b3c-1f2e3d4c5b6a", "role": "subject"}
                    ],
                    "witnesses": [{"name": "A volunteer"}],
                    "desired_outcome": "That it stops.",
                    "excluded_person_ids": [],
                    "language": "en",
                }
            ]
        }
    )


class ReportSubmitted(BaseModel):
    report_id: uuid.UUID
    receipt_code: str | None = Field(
        default=None,
        description=(
            "Anonymous and confidential reports only: the code to follow up on the report "
            "(exchange it at `POST /auth/receipt`). Shown this once; it cannot be recovered."
        ),
        examples=["K7QW2-9XMDA-4RT0P-ZZ81C"],
    )
    submitted_at: datetime
    message: str = Field(examples=["Thank you. Your report has been received."])


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attachment_id: uuid.UUID
    report_id: uuid.UUID
    filename: str = Field(examples=["photo.jpg"])
    content_type: str = Field(examples=["image/jpeg"])
    size: int = Field(examples=[1234])
    sha256: str
    created_at: datetime


class ReceiptVerifyIn(RequestModel):
    # No slug pattern: a malformed org gets the same 404 as a wrong one.
    org: str = Field(min_length=1, max_length=63, examples=["demo"])
    receipt_code: str = Field(min_length=1, max_length=64, examples=["K7QW2-9XMDA-4RT0P-ZZ81C"])


class ReceiptVerified(BaseModel):
    report_id: uuid.UUID
    org_id: uuid.UUID
