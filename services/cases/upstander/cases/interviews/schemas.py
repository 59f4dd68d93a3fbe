"""Request and response shapes of interviews and their versions.

An interview is corrected like a note: a correction (`InterviewCorrectionIn`) names only the
fields that change; the others carry over from the current version, and the result is stored
as a new, complete version. Earlier versions stay readable, unchanged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from upstander.cases.models import CaseInterview, CaseInterviewVersion, InterviewRole
from upstander.cases.notes.schemas import Author
from upstander.kit.schemas import RequestModel, ResponseModel

NAME_MAX = 200
SUMMARY_MAX = 10_000
STATEMENT_MAX = 100_000
REASON_MAX = 2_000
INTERVIEWERS_MAX = 20
ATTENDEES_MAX = 50
EVIDENCE_MAX = 100

_INTERVIEW_ID = "8a2d4c6e-1f3b-4a5c-9d7e-0b1c2d3e4f50"
_CASE_ID = "5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"
_PERSON_ID = "2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"
_WITNESS_ID = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
_EVIDENCE_ID = "0f1e2d3c-4b5a-4968-8776-655443322110"
_AUTHOR = {"kind": "person", "id": _PERSON_ID}
_CONTENT_EXAMPLE: dict[str, Any] = {
    "interviewee": {"person_id": _WITNESS_ID, "name": None},
    "role": "witness",
    "held_at": "2026-11-23T15:00:00+01:00",
    "interviewer_person_ids": [_PERSON_ID],
    "attendees": {"person_ids": [], "names": ["Sam Ortiz (union representative)"]},
    "summary": "Saw the respondent follow the reporter out of the office twice.",
    "statement": "On the evening of the 18th I was locking up when ...",
    "evidence_item_ids": [_EVIDENCE_ID],
}


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class Interviewee(RequestModel):
    """Who was interviewed: a person of your organisation's directory, or (someone outside
    it) a name. Exactly one of the two."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"person_id": _WITNESS_ID}]}
    )

    person_id: uuid.UUID | None = Field(
        default=None,
        description="Their directory id (a person of the case's organisation, else 422).",
        examples=[_WITNESS_ID],
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_MAX,
        description="Their name, for someone not in the directory (sealed).",
        examples=[None],
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Interviewee:
        if (self.person_id is None) == (self.name is None):
            raise ValueError("Give either `person_id` or `name`, not both and not neither.")
        return self


class Attendees(RequestModel):
    """Who else was in the room (a support person, a representative, a note taker)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"person_ids": [], "names": ["Sam Ortiz"]}]},
    )

    person_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=ATTENDEES_MAX,
        description="Directory ids of people of the case's organisation (else 422).",
    )
    names: list[Name] = Field(
        default_factory=list,
        max_length=ATTENDEES_MAX,
        description="Names of people not in the directory (sealed).",
    )

    @field_validator("person_ids", "names")
    @classmethod
    def _dedupe(cls, values: list[Any]) -> list[Any]:
        return _unique(values)


_SUMMARY_DESCRIPTION = "What the interview established, in short (sealed)."
_STATEMENT_DESCRIPTION = "The interviewee's statement, as long as it needs (sealed)."


class InterviewIn(RequestModel):
    """An interview. The same fields for every role: a respondent's account is recorded as
    fully as a reporter's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CONTENT_EXAMPLE]})

    interviewee: Interviewee
    role: InterviewRole = Field(
        description="In which capacity they were interviewed.", examples=["witness"]
    )
    held_at: AwareDatetime = Field(
        description="When it was held, with its time zone (not in the future).",
        examples=["2026-11-23T15:00:00+01:00"],
    )
    interviewer_person_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=INTERVIEWERS_MAX,
        description=(
            "Directory ids of who held the interview; by default you. Each must be a person "
            "of the case's organisation (422) without a conflict of interest on it (409). An "
            "API client must name them."
        ),
        examples=[[_PERSON_ID]],
    )
    attendees: Attendees = Field(default_factory=Attendees)
    summary: str = Field(
        min_length=1,
        max_length=SUMMARY_MAX,
        description=_SUMMARY_DESCRIPTION,
        examples=[_CONTENT_EXAMPLE["summary"]],
    )
    statement: str | None = Field(
        default=None,
        min_length=1,
        max_length=STATEMENT_MAX,
        description=_STATEMENT_DESCRIPTION,
        examples=[_CONTENT_EXAMPLE["statement"]],
    )
    evidence_item_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=EVIDENCE_MAX,
        description="Evidence items of this case attached to the interview.",
        examples=[[_EVIDENCE_ID]],
    )

    @field_validator("interviewer_person_ids", "evidence_item_ids")
    @classmethod
    def _dedupe(cls, values: list[Any] | None) -> list[Any] | None:
        return None if values is None else _unique(values)


class InterviewCorrectionIn(RequestModel):
    """A correction: only the fields that change (the others carry over), and why. At least
    one field besides `reason`. `statement: null` removes the statement."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "held_at": "2026-11-23T16:00:00+01:00",
                    "reason": "The interview started an hour later than first recorded.",
                }
            ]
        },
    )

    interviewee: Interviewee | None = None
    role: InterviewRole | None = Field(default=None, examples=["witness"])
    held_at: AwareDatetime | None = Field(default=None, examples=["2026-11-23T16:00:00+01:00"])
    interviewer_person_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=INTERVIEWERS_MAX, examples=[[_PERSON_ID]]
    )
    attendees: Attendees | None = None
    summary: str | None = Field(
        default=None,
        min_length=1,
        max_length=SUMMARY_MAX,
        description=_SUMMARY_DESCRIPTION,
        examples=[_CONTENT_EXAMPLE["summary"]],
    )
    statement: str | None = Field(
        default=None,
        min_length=1,
        max_length=STATEMENT_MAX,
        description=_STATEMENT_DESCRIPTION,
        examples=[_CONTENT_EXAMPLE["statement"]],
    )
    evidence_item_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=EVIDENCE_MAX, examples=[[_EVIDENCE_ID]]
    )
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=REASON_MAX,
        description="Why it was corrected (sealed).",
        examples=["The interview started an hour later than first recorded."],
    )

    @field_validator("interviewer_person_ids", "evidence_item_ids")
    @classmethod
    def _dedupe(cls, values: list[Any] | None) -> list[Any] | None:
        return None if values is None else _unique(values)

    @model_validator(mode="after")
    def _changes_something(self) -> InterviewCorrectionIn:
        given = self.model_fields_set - {"reason"}
        if not given:
            raise ValueError("Name at least one field to correct.")
        for name in given - {"statement"}:
            if getattr(self, name) is None:
                raise ValueError(f"`{name}` cannot be null (only `statement` can be removed).")
        return self


# ----------------------------------------------------------------------------- responses


class IntervieweeOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"person_id": _WITNESS_ID}]})

    person_id: uuid.UUID | None = Field(default=None, description="Their directory id, if any.")
    name: str | None = Field(default=None, description="Their name, if not in the directory.")


class AttendeesOut(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"person_ids": [], "names": ["Sam Ortiz"]}]}
    )

    person_ids: list[uuid.UUID] = Field(default_factory=list)
    names: list[str] = Field(default_factory=list)


class InterviewContent(ResponseModel):
    """The recorded content of an interview (all sealed fields are null once the case's data
    was destroyed)."""

    interviewee: IntervieweeOut | None
    role: InterviewRole
    held_at: datetime
    interviewer_person_ids: list[uuid.UUID]
    attendees: AttendeesOut | None
    summary: str | None
    statement: str | None
    evidence_item_ids: list[uuid.UUID]


def _content(version: CaseInterviewVersion) -> dict[str, Any]:
    return {
        "interviewee": None
        if version.interviewee is None
        else IntervieweeOut.model_validate(version.interviewee),
        "role": version.role,
        "held_at": version.held_at,
        "interviewer_person_ids": version.interviewer_person_ids,
        "attendees": None
        if version.attendees is None
        else AttendeesOut.model_validate(version.attendees),
        "summary": version.summary,
        "statement": version.statement,
        "evidence_item_ids": version.evidence_item_ids,
    }


_VERSION_EXAMPLE = {
    "number": 1,
    "author": _AUTHOR,
    "reason": None,
    "created_at": "2026-11-24T10:00:00Z",
    **_CONTENT_EXAMPLE,
}
_INTERVIEW_EXAMPLE = {
    "id": _INTERVIEW_ID,
    "case_id": _CASE_ID,
    "version": 1,
    "author": _AUTHOR,
    "created_at": "2026-11-24T10:00:00Z",
    "updated_at": "2026-11-24T10:00:00Z",
    **_CONTENT_EXAMPLE,
}


class InterviewVersionOut(InterviewContent):
    """One complete version of an interview record."""

    model_config = ConfigDict(json_schema_extra={"examples": [_VERSION_EXAMPLE]})

    number: int = Field(description="1 for the original, then one more per correction.")
    author: Author = Field(description="Who recorded this version.")
    reason: str | None = Field(description="Why this correction was made (null for the first).")
    created_at: datetime

    @classmethod
    def of(cls, version: CaseInterviewVersion) -> InterviewVersionOut:
        return cls(
            number=version.number,
            author=Author(kind=version.author_kind, id=version.author_id),
            reason=version.reason,
            created_at=version.created_at,
            **_content(version),
        )


class InterviewOut(InterviewContent):
    """An interview as it reads now: its current version."""

    model_config = ConfigDict(json_schema_extra={"examples": [_INTERVIEW_EXAMPLE]})

    id: uuid.UUID
    case_id: uuid.UUID
    version: int = Field(description="The number of the current version.")
    author: Author = Field(description="Who first recorded the interview.")
    created_at: datetime = Field(description="When it was first recorded.")
    updated_at: datetime = Field(description="When its current version was recorded.")

    @classmethod
    def of(cls, interview: CaseInterview) -> InterviewOut:
        return cls(**_interview_fields(interview))


class InterviewDetail(InterviewOut):
    """An interview with every version of its record, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_INTERVIEW_EXAMPLE, "versions": [_VERSION_EXAMPLE]}]}
    )

    versions: list[InterviewVersionOut]

    @classmethod
    def of(cls, interview: CaseInterview) -> InterviewDetail:
        return cls(
            **_interview_fields(interview),
            versions=[InterviewVersionOut.of(v) for v in interview.versions],
        )


def _interview_fields(interview: CaseInterview) -> dict[str, Any]:
    current = interview.versions[-1]
    return {
        "id": interview.id,
        "case_id": interview.case_id,
        "version": current.number,
        "author": Author(kind=interview.author_kind, id=interview.author_id),
        "created_at": interview.created_at,
        "updated_at": current.created_at,
        **_content(current),
    }


class InterviewPage(ResponseModel):
    """One page of a case's interviews, oldest recorded first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_INTERVIEW_EXAMPLE], "next_cursor": None}]}
    )

    items: list[InterviewOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[None],
    )
