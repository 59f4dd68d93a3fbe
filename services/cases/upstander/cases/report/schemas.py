"""Request and response shapes of what the reporter gave: the report as handlers read it,
its attachments, and the confidential reporter's identity (a separate, audited read)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from upstander.cases.models import AttachmentFileStatus, ReporterMode
from upstander.kit.schemas import RequestModel, ResponseModel

REASON_MIN = 10
REASON_MAX = 500


class PersonMentionOut(ResponseModel):
    """Someone the report names: a directory person, a free-text name, or both."""

    person_id: uuid.UUID | None = Field(
        default=None,
        description="A staff member's id, when the reporter picked them from the directory.",
        examples=["0b6c3a2e-8d1f-4a8e-9b3c-1f2e3d4c5b6a"],
    )
    name: str | None = Field(default=None, max_length=2000, examples=["A volunteer"])
    role: str | None = Field(
        default=None,
        max_length=200,
        description="For people involved: `subject`, `affected` or `other`.",
        examples=["subject"],
    )


class AttachmentOut(ResponseModel):
    """A file the reporter attached. Download it at `.../attachments/{id}/content` once
    `available` is true."""

    id: uuid.UUID = Field(
        description="The attachment's id (the same one intake gave the reporter).",
        examples=["7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"],
    )
    filename: str | None = Field(
        max_length=2000,
        description="As the reporter named it (sanitised by intake); null once shredded.",
        examples=["photo-of-the-note.jpg"],
    )
    content_type: str = Field(max_length=200, examples=["image/jpeg"])
    size: int = Field(description="In bytes.", examples=[48213])
    status: AttachmentFileStatus = Field(
        description=(
            "`pending`: the file is still on its way from intake (retried until it arrives); "
            "`stored`: it can be downloaded; `unavailable`: intake no longer has it."
        ),
        examples=["stored"],
    )
    available: bool = Field(description="Whether the content can be downloaded.", examples=[True])
    created_at: datetime = Field(examples=["2026-11-24T09:30:02Z"])


class AttachmentList(ResponseModel):
    items: list[AttachmentOut] = Field(max_length=1000)


class ReportOut(ResponseModel):
    """Everything the reporter gave, for the people handling the case. A confidential
    reporter's name and contact are never part of it: they are read separately, with a
    reason, at `.../reporter-identity`."""

    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    report_id: uuid.UUID = Field(
        description="The intake report that opened the case.",
        examples=["0b8f7a52-8d0e-4b2c-a1f3-6c9f2f7e3d10"],
    )
    source: str = Field(
        description=(
            "`report` (the reporting form), or `retaliation_check_in` for a case opened from "
            "a reporter's answer to a retaliation check-in (`follows_up` names the case)."
        ),
        examples=["report"],
    )
    follows_up: str | None = Field(
        default=None,
        description="The number of the case a retaliation follow-up case comes from.",
        examples=[None],
    )
    reporter_mode: ReporterMode = Field(
        description="`anonymous`, `confidential` or `identified`.", examples=["confidential"]
    )
    received_at: datetime = Field(examples=["2026-11-24T09:30:00Z"])
    description: str | None = Field(
        default=None,
        description="What happened, in the reporter's words.",
        examples=["He cornered me in the copy room after the rally."],
    )
    occurred_at: str | None = Field(
        default=None, max_length=200, description="When it happened.", examples=["2026-11-20"]
    )
    location: str | None = Field(
        default=None, max_length=2000, description="Where it happened.", examples=["Field office"]
    )
    people_involved: list[PersonMentionOut] = Field(default_factory=list, max_length=1000)
    witnesses: list[PersonMentionOut] = Field(default_factory=list, max_length=1000)
    desired_outcome: str | None = Field(default=None, examples=["That it stops."])
    categories: list[str] = Field(
        default_factory=list, max_length=100, examples=[["sexual_harassment"]]
    )
    language: str | None = Field(
        default=None,
        max_length=35,
        description="The language the reporter writes in (`en`, `es`).",
        examples=["en"],
    )
    attachments: list[AttachmentOut] = Field(default_factory=list, max_length=1000)


class ReporterIdentityIn(RequestModel):
    """Why you need to know who the reporter is. Recorded (sealed under the case's key)."""

    reason: str = Field(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        description="Why you need the reporter's identity, 10 to 500 characters.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "To arrange the interview the reporter asked for."}]
        }
    )


class ReporterIdentityOut(ResponseModel):
    """Who the reporter is: name and contact for a confidential report, the directory id
    for an identified one."""

    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    reporter_mode: ReporterMode = Field(examples=["confidential"])
    name: str | None = Field(default=None, max_length=2000, examples=["Jordan"])
    contact: str | None = Field(default=None, max_length=2000, examples=["jordan@example.org"])
    person_id: uuid.UUID | None = Field(
        default=None,
        description="Identified reports: the reporter's directory id.",
        examples=[None],
    )
    read_id: uuid.UUID = Field(
        description="This read, as recorded with its reason (the audit entry names it).",
        examples=["3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d"],
    )
