"""Request and response shapes of the matching escrow."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from upstander.intake.escrow.identifiers import IdentifierKind
from upstander.intake.forms.schemas import SLUG_PATTERN, Key, Language
from upstander.intake.models import ReportMode
from upstander.intake.reports.schemas import (
    DESCRIPTION_MAX,
    MAX_PEOPLE,
    PersonInvolved,
    ReporterContact,
    Witness,
)
from upstander.kit.schemas import RequestModel

MAX_IDENTIFIERS = 10

EscrowStatusName = Literal["waiting", "matched", "released", "withdrawn", "expired"]


class IdentifierIn(RequestModel):
    """One way of naming the person the report is about. Case, spacing and separators do
    not matter (docs/escrow.md, "Normal forms")."""

    kind: IdentifierKind = Field(examples=["email"])
    value: str = Field(
        min_length=1,
        max_length=320,
        description="A directory person id, a work email, a phone number or a handle.",
        examples=["Ana.Diaz@example.org"],
    )
    platform: str | None = Field(
        default=None,
        max_length=40,
        description="For a `handle`: the platform (`x`, `instagram`, `slack`...).",
        examples=["x"],
    )


class EscrowReport(RequestModel):
    """The report held in escrow: as a report's body, without `org` and `mode` (the mode is
    chosen when releasing it). `reporter` (name and contact) is needed only to release it as
    a confidential report later; it also keeps one reporter from matching themselves."""

    description: str = Field(
        min_length=1, max_length=DESCRIPTION_MAX, examples=["What happened, in my words."]
    )
    categories: list[Key] = Field(default_factory=list, max_length=50)
    occurred_at: date | None = Field(default=None, examples=["2026-11-20"])
    location: str | None = Field(default=None, max_length=500)
    people_involved: list[PersonInvolved] = Field(default_factory=list, max_length=MAX_PEOPLE)
    witnesses: list[Witness] = Field(default_factory=list, max_length=MAX_PEOPLE)
    desired_outcome: str | None = Field(default=None, max_length=5_000)
    excluded_person_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_PEOPLE)
    reporter: ReporterContact | None = None
    language: Language = Language.EN

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, categories: list[str]) -> list[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("categories must be unique")
        return categories


class EscrowIn(RequestModel):
    """Place a report in escrow: released to the case handlers only once another,
    independent reporter names the same person and you then choose to release it."""

    org: str = Field(pattern=SLUG_PATTERN, max_length=63, examples=["demo"])
    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=MAX_IDENTIFIERS)
    report: EscrowReport

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": "demo",
                    "identifiers": [
                        {"kind": "email", "value": "Ana.Diaz@example.org"},
                        {"kind": "phone", "value": "+1 (555) 010-2030"},
                    ],
                    "report": {
                        "description": "What happened, in my words.",
                        "categories": ["sexual_harassment"],
                        "occurred_at": "2026-11-20",
                    },
                }
            ]
        }
    )


class EscrowCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "escrow_id": "5f0c1e2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
                    "receipt_code": "K7QW2-9XMDA-4RT0P-ZZ81C",
                    "status": "waiting",
                    "expires_at": "2027-11-30T10:00:00Z",
                    "message": "Your report is held. Nobody at the organisation can see it.",
                }
            ]
        }
    )

    escrow_id: uuid.UUID = Field(
        description="The entry; once released, its report has the same id."
    )
    receipt_code: str = Field(
        description=(
            "Shown this once. Exchange it at `POST /auth/receipt` for a reporter token to "
            "follow the entry (`GET /intake/v1/reporter/escrow`), release or withdraw it."
        ),
        examples=["K7QW2-9XMDA-4RT0P-ZZ81C"],
    )
    status: EscrowStatusName = Field(examples=["waiting"])
    expires_at: datetime
    message: str


class EscrowState(BaseModel):
    """An escrow entry as its reporter sees it."""

    escrow_id: uuid.UUID
    status: EscrowStatusName = Field(
        description=(
            "`waiting`: nobody else has named this person yet. `matched`: at least one other, "
            "independent reporter has: you may release your report (or withdraw it). "
            "`released`: it is a report now (`report_id`). `withdrawn`, `expired`: it is gone."
        ),
        examples=["matched"],
    )
    created_at: datetime
    expires_at: datetime
    matched_at: datetime | None = None
    released_at: datetime | None = None
    report_id: uuid.UUID | None = Field(
        default=None, description="Once released: the report (and its case) it became."
    )
    message: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "escrow_id": "5f0c1e2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
                    "status": "matched",
                    "created_at": "2026-11-24T09:00:00Z",
                    "expires_at": "2027-11-24T09:00:00Z",
                    "matched_at": "2026-11-30T10:00:00Z",
                    "message": "Someone else has named the same person. You may release it.",
                }
            ]
        }
    )


class ReleaseIn(RequestModel):
    """How to release a matched entry: as an anonymous, confidential (with `reporter`, or
    the contact given in escrow) or identified report (only an entry made with a staff
    token)."""

    mode: ReportMode = Field(default=ReportMode.ANONYMOUS, examples=["confidential"])
    reporter: ReporterContact | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"mode": "confidential", "reporter": {"name": "Jo", "contact": "jo@example.org"}}
            ]
        }
    )


class EscrowSettingsIn(RequestModel):
    threshold: int = Field(
        ge=2,
        le=10,
        description="How many independent reporters must name the same person (default 2).",
        examples=[2],
    )
    expiry_days: int = Field(
        ge=1, le=3650, description="How long an entry waits for a match.", examples=[365]
    )


class EscrowSettingsOut(BaseModel):
    threshold: int = Field(examples=[2])
    expiry_days: int = Field(examples=[365])
