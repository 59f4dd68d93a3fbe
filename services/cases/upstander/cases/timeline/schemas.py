"""Response shapes of a case's timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from upstander.kit.schemas import ResponseModel

# A summary holds short facts (states, categories, ids, dates), never sealed content.
SummaryValue = str | int | bool | None


class TimelineKind(StrEnum):
    """What happened. Items of one instant are ordered by kind (alphabetically), then id."""

    CASE_OPENED = "case_opened"
    REPORT_ATTACHMENT = "report_attachment"
    TRANSITION = "transition"
    MESSAGE = "message"
    ASSIGNMENT = "assignment"
    SHARE = "share"
    INTERIM_MEASURE = "interim_measure"
    ALLEGATION = "allegation"
    FINDING = "finding"
    CORRECTIVE_ACTION = "corrective_action"
    CORRECTIVE_ACTION_DONE = "corrective_action_done"
    CHECKIN = "checkin"
    CHECKIN_ANSWERED = "checkin_answered"
    NOTE = "note"
    NOTE_VERSION = "note_version"
    INTERVIEW = "interview"
    INTERVIEW_VERSION = "interview_version"
    EVIDENCE = "evidence"
    CUSTODY = "custody"


class TimelineActor(ResponseModel):
    """Who did it: `person` (a directory id), `client` (an API client's id), `reporter`,
    `system`; `kind` is null where only an id was recorded."""

    kind: str | None = Field(default=None, max_length=16, examples=["person"])
    id: str | None = Field(
        default=None, max_length=200, examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"]
    )


class TimelineItem(ResponseModel):
    at: datetime = Field(examples=["2026-11-24T10:02:00Z"])
    kind: TimelineKind = Field(examples=["transition"])
    id: uuid.UUID = Field(
        description=(
            "The id of the record behind the item (a transition, a message, an allegation for "
            "`allegation` and `finding`, ...): with `kind`, unique in the timeline."
        ),
        examples=["3e1f0a52-8d0e-4b2c-a1f3-6c9f2f7e3d10"],
    )
    actor: TimelineActor | None = Field(default=None, examples=[{"kind": "person", "id": "..."}])
    summary: dict[str, SummaryValue] = Field(
        default_factory=dict,
        description=(
            "Short facts of the item by kind, never its sealed text (read the record itself, "
            "or the export, for that): `transition` {from, to, referred_to, outcome}; "
            "`message` {direction: from_reporter | to_reporter | system, is_feedback}; "
            "`assignment` {person_id, role}; `share` {person_id}; `interim_measure` {kind, "
            "affects, starts_on, ends_on}; `allegation` {category}; `finding` {category, "
            "finding}; `corrective_action` {status, due_at, owner_person_id}; "
            "`corrective_action_done` {}; `checkin` {offset_days, due_at}; `checkin_answered` "
            "{retaliation, follow_up_opened}; `case_opened` {number, reporter_mode, "
            "routed_to, received_at}; `report_attachment` {content_type, size}; `note` and "
            "`interview` {version}; `note_version` and `interview_version` {record_id, "
            "version}; `evidence` {content_type, size}; `custody` {evidence_id, action}."
        ),
        examples=[{"from": "new", "to": "triage", "referred_to": None, "outcome": None}],
    )


class TimelinePage(ResponseModel):
    items: list[TimelineItem]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[None],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "at": "2026-11-24T09:30:02Z",
                            "kind": "case_opened",
                            "id": "5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77",
                            "actor": {"kind": "reporter", "id": None},
                            "summary": {
                                "number": "DEMO-2026-0001",
                                "reporter_mode": "anonymous",
                                "routed_to": "case_managers",
                                "received_at": "2026-11-24T09:30:00+00:00",
                            },
                        },
                        {
                            "at": "2026-11-24T10:02:00Z",
                            "kind": "transition",
                            "id": "3e1f0a52-8d0e-4b2c-a1f3-6c9f2f7e3d10",
                            "actor": {
                                "kind": "person",
                                "id": "2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e",
                            },
                            "summary": {
                                "from": "new",
                                "to": "triage",
                                "referred_to": None,
                                "outcome": None,
                            },
                        },
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )
