"""Request and response bodies of HR sync: external references and the change feed."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from upstander.cases.cases.schemas import CaseOut
from upstander.cases.models import CaseStatus
from upstander.cases.report.schemas import ReportOut
from upstander.kit.changefeed import HAS_MORE_DESCRIPTION, NEXT_CURSOR_DESCRIPTION
from upstander.kit.external_refs import SYSTEM_PATTERN
from upstander.kit.schemas import RequestModel, ResponseModel


class ExternalRefIn(RequestModel):
    system: str = Field(
        pattern=SYSTEM_PATTERN,
        description="The other system's name (lower case), e.g. `workday`.",
        examples=["workday"],
    )
    id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\s]+$",
        description="What the other system calls the case.",
        examples=["E-1042"],
    )


class ExternalRefOut(ResponseModel):
    system: str = Field(examples=["workday"])
    id: str = Field(examples=["E-1042"])


# ----------------------------------------------------------------------------- HR-opened cases


class MentionIn(RequestModel):
    """Someone the report names: a directory person, a free-text name, or both."""

    person_id: uuid.UUID | None = Field(default=None, examples=[None])
    name: str | None = Field(default=None, max_length=2000, examples=["The night-shift lead"])
    role: str | None = Field(default=None, max_length=200, examples=["subject"])

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.person_id is None and not self.name:
            raise ValueError("Give a person_id, a name, or both.")
        return self


class ReporterIn(RequestModel):
    """Who reported: `{person_id}` (a directory person) for an identified report, `{name,
    contact}` for a confidential one; nothing for an anonymous one."""

    person_id: uuid.UUID | None = Field(default=None, examples=[None])
    name: str | None = Field(default=None, max_length=2000, examples=["A. Worker"])
    contact: str | None = Field(default=None, max_length=2000, examples=["+1 555 0100"])


class HrCaseIn(RequestModel):
    """A report another system (an HR system, a hotline) received by phone, email or in
    person, opened as a case exactly as if it came through the reporting form."""

    model_config = RequestModel.model_config | {
        "str_max_length": 100_000,
        "json_schema_extra": {
            "examples": [
                {
                    "external_ref": {"system": "workday", "id": "E-1042"},
                    "mode": "confidential",
                    "categories": ["sexual_harassment"],
                    "received_at": "2026-11-30T09:12:00Z",
                    "description": "Reported by phone to HR: comments at the phone bank.",
                    "people_involved": [
                        {"person_id": "2c1d0e9f-8a7b-4c3d-9e0f-1a2b3c4d5e6f", "role": "subject"}
                    ],
                    "excluded_person_ids": [],
                    "reporter": {"name": "A. Worker", "contact": "+1 555 0100"},
                }
            ]
        },
    }

    external_ref: ExternalRefIn = Field(
        description="What your system calls the report: a repeat with the same reference "
        "returns the case already opened (200), so a sync can be re-run."
    )
    mode: Literal["anonymous", "confidential", "identified"] = Field(
        description="How the reporter chose to be known. `identified` needs "
        "`reporter.person_id`; `confidential` a `reporter.name` or `reporter.contact`; "
        "`anonymous` no `reporter` at all.",
        examples=["confidential"],
    )
    categories: list[str] = Field(min_length=1, max_length=20, examples=[["sexual_harassment"]])
    received_at: datetime | None = Field(
        default=None,
        description="When your system received it (ISO 8601 with a time zone; not in the "
        "future). The deadlines count from it. Default: now. For an anonymous or "
        "confidential reporter it is kept to the hour.",
        examples=["2026-11-30T09:12:00Z"],
    )
    description: str = Field(
        min_length=1, description="What happened, as reported.", examples=["He cornered me."]
    )
    occurred_at: date | None = Field(default=None, examples=["2026-11-20"])
    location: str | None = Field(default=None, max_length=2000, examples=["Copy room"])
    people_involved: list[MentionIn] = Field(default_factory=list, max_length=100)
    witnesses: list[MentionIn] = Field(default_factory=list, max_length=100)
    desired_outcome: str | None = Field(default=None, examples=[None])
    excluded_person_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="Directory people the reporter asked never to see the case.",
    )
    language: str | None = Field(default=None, max_length=35, examples=["en"])
    reporter: ReporterIn | None = None

    @model_validator(mode="after")
    def _reporter_matches_mode(self) -> Self:
        reporter = self.reporter
        if self.mode == "anonymous" and reporter is not None:
            raise ValueError("An anonymous report has no `reporter`.")
        if self.mode == "identified" and (reporter is None or reporter.person_id is None):
            raise ValueError("An identified report needs `reporter.person_id`.")
        if self.mode == "confidential" and (
            reporter is None or not (reporter.name or reporter.contact)
        ):
            raise ValueError("A confidential report needs `reporter.name` or `reporter.contact`.")
        if self.received_at is not None and self.received_at.utcoffset() is None:
            raise ValueError("`received_at` needs a time zone, e.g. `2026-11-30T09:12:00Z`.")
        return self

    def report_data(self) -> dict[str, Any]:
        """The fields as intake's `report.submitted` carries them."""
        data = self.model_dump(
            mode="json",
            exclude={"external_ref", "received_at"},
            exclude_none=False,
        )
        data["witnesses"] = [
            {key: value for key, value in witness.items() if key != "role"}
            for witness in data["witnesses"]
        ]
        data["reporter"] = (
            None
            if self.reporter is None
            else self.reporter.model_dump(mode="json", exclude_none=True)
        )
        return data


class OpenedCaseOut(ResponseModel):
    id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    number: str = Field(examples=["DEMO-2026-0001"])
    external_refs: list[ExternalRefOut]
    case: CaseOut | None = Field(
        examples=[None],
        description="The case, or null when it is hidden from you (you, or someone you "
        "manage, are involved or excluded; or it went to independent reviewers): you can "
        "no longer read it, like any handler in that position.",
    )


# ----------------------------------------------------------------------------- the feed


class ChangeOut(ResponseModel):
    """One committed change to a case: ids and metadata, and with `include=report` (scope
    `cases:content`) what was reported. Fetch the case (`GET /cases/v1/cases/{case_id}`)
    for the rest."""

    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    number: str | None = Field(
        description="Null for a tombstone (`deleted`).", examples=["DEMO-2026-0001"]
    )
    change: Literal["created", "updated", "deleted"] = Field(
        description="`created`: the case opened; `updated`: its state, assignments or "
        "external references changed; `deleted`: a tombstone, the case was deleted past its "
        "retention and its content crypto-shredded. Drop your copy: the case's earlier "
        "changes no longer appear in the feed, and it reads as 404 from now on.",
        examples=["updated"],
    )
    changed_at: datetime | None = Field(
        default=None,
        description="When it changed; null for `created` (an anonymous reporter's timing "
        "is never given out).",
        examples=["2026-11-30T10:00:00Z"],
    )
    status: CaseStatus = Field(description="The case's status now.", examples=["triage"])
    version: int = Field(description="The case's version now (its ETag).", examples=[3])
    external_refs: list[ExternalRefOut] = Field(
        default_factory=list, description="Empty for a tombstone."
    )
    report: ReportOut | None = Field(
        default=None,
        description="What was reported (as `get_case_report` gives it), only with "
        "`include=report`, which needs `cases:content` (each one is audited as a "
        "`report.read`); null otherwise, for a tombstone, or when the case's content is "
        "destroyed.",
    )


class ChangePage(ResponseModel):
    items: list[ChangeOut]
    next_cursor: str = Field(
        description=NEXT_CURSOR_DESCRIPTION, examples=["WyJjYXNlLWNoYW5nZXMiLCA0Ml0"]
    )
    has_more: bool = Field(description=HAS_MORE_DESCRIPTION, examples=[False])
