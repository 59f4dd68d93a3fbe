"""Response shapes of a case file, as handlers read it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from upstander.cases.models import (
    CaseStatus,
    Outcome,
    Priority,
    ReferralTarget,
    ReporterMode,
    RoutedTo,
    Severity,
)
from upstander.kit.contracts import AttachmentAdded, AttachmentMeta, ReportSubmitted
from upstander.kit.schemas import ResponseModel

__all__ = [
    "AttachmentAdded",
    "AttachmentMeta",
    "CaseOut",
    "CasePage",
    "ReportSubmitted",
    "report_content",
]


class CaseOut(ResponseModel):
    """A case as its handlers see it. `version` is also the `ETag` of `GET /cases/{id}`."""

    id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    number: str = Field(
        description="Per organisation and year, e.g. `DEMO-2026-0001`.",
        examples=["DEMO-2026-0001"],
    )
    status: CaseStatus = Field(examples=["new"])
    severity: Severity | None = Field(default=None, examples=[None])
    priority: Priority = Field(examples=["normal"])
    categories: list[str] = Field(examples=[["sexual_harassment"]])
    report_id: uuid.UUID = Field(
        description="The intake report that opened the case.",
        examples=["0b8f7a52-8d0e-4b2c-a1f3-6c9f2f7e3d10"],
    )
    received_at: datetime = Field(examples=["2026-11-24T09:30:00Z"])
    acknowledge_by: datetime = Field(
        description="Receipt must be acknowledged by then (7 days).",
        examples=["2026-12-01T09:30:00Z"],
    )
    feedback_by: datetime = Field(
        description=(
            "Feedback is due by then: 3 months after the acknowledgment (or, before one "
            "is sent, after the acknowledgment deadline)."
        ),
        examples=["2027-03-01T09:30:00Z"],
    )
    acknowledged_at: datetime | None = Field(default=None, examples=[None])
    feedback_sent_at: datetime | None = Field(
        default=None,
        description="When the reporter was told what is being done.",
        examples=[None],
    )
    closed_at: datetime | None = Field(default=None, examples=[None])
    routed_to: RoutedTo = Field(
        description=(
            "`case_managers`, or `reviewers` when someone involved is leadership or above a "
            "case manager: then only reviewers (and people assigned or shared) see it."
        ),
        examples=["case_managers"],
    )
    referred_to: ReferralTarget | None = Field(default=None, examples=[None])
    outcome: Outcome | None = Field(default=None, examples=[None])
    reporter_mode: ReporterMode = Field(
        description="How the reporter chose to be known: anonymous, confidential, identified.",
        examples=["anonymous"],
    )
    reporter_person_id: uuid.UUID | None = Field(
        default=None,
        description="The reporter's directory id; identified reports only.",
        examples=[None],
    )
    legal_hold: bool = Field(
        default=False,
        description="On hold, the case is kept past its retention period.",
        examples=[False],
    )
    legal_hold_at: datetime | None = Field(default=None, examples=[None])
    version: int = Field(examples=[1])
    created_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])
    updated_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])

    model_config = ConfigDict(from_attributes=True)


class CasePage(ResponseModel):
    items: list[CaseOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=["WyIyMDI2LTExLTI0VDA5OjMwOjAyKzAwOjAwIiwgIjVmMGM2YThlIl0"],
    )


# ----------------------------------------------------------------------------- inbound events
# What intake sends is the shared contract (upstander.kit.contracts, docs/events.md), re-exported
# here for the case code.


def report_content(report: ReportSubmitted) -> dict[str, Any]:
    """What is sealed into the case file: everything the reporter wrote or gave. Witnesses and
    the reporter keep every key (`role`, `person_id`, `name`, `contact`; null when not given),
    the shape case files have always been stored in."""
    content = report.model_dump(
        mode="json",
        include={
            "description",
            "occurred_at",
            "location",
            "people_involved",
            "witnesses",
            "desired_outcome",
            "language",
            "categories",
            "attachments",
        },
    )
    content["witnesses"] = [{**witness, "role": None} for witness in content["witnesses"]]
    if report.recorded_at is not None:
        # Made from a private record: the time its proof signs (intake docs/escrow.md).
        content["recorded_at"] = report.recorded_at.isoformat()
    reporter = report.reporter
    content["reporter"] = (
        None
        if reporter is None
        else {
            "person_id": str(reporter.person_id) if reporter.person_id else None,
            "name": reporter.name,
            "contact": reporter.contact,
        }
    )
    return content
