"""Request and response shapes of investigation notes and their versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from upstander.cases.models import CaseNote, CaseNoteVersion
from upstander.kit.schemas import RequestModel, ResponseModel

BODY_MAX = 20_000
REASON_MAX = 2_000

_NOTE_ID = "3e1f0a52-7c4b-4d8e-9f10-2a6b5c7d8e90"
_CASE_ID = "5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"
_PERSON_ID = "2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"
_AUTHOR: dict[str, Any] = {"kind": "person", "id": _PERSON_ID}


class NoteIn(RequestModel):
    """A new note. Plain text, sealed under the case's key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"body": "Called the field office lead; the rota confirms both shifts."}]
        },
    )

    body: str = Field(
        min_length=1,
        max_length=BODY_MAX,
        description="The note, plain text (sealed under the case's key).",
        examples=["Called the field office lead; the rota confirms both shifts."],
    )


class NoteCorrectionIn(RequestModel):
    """A correction: the note's new full text, and why it changed. The earlier text stays."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "body": "Called the field office lead; the rota confirms both evening shifts.",
                    "reason": "Both shifts were evening shifts.",
                }
            ]
        },
    )

    body: str = Field(
        min_length=1,
        max_length=BODY_MAX,
        description="The note's corrected full text (sealed under the case's key).",
        examples=["Called the field office lead; the rota confirms both evening shifts."],
    )
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=REASON_MAX,
        description="Why it was corrected (sealed under the case's key).",
        examples=["Both shifts were evening shifts."],
    )


class Author(ResponseModel):
    """Who wrote something: a person (their directory id) or an API client (its client id)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_AUTHOR]})

    kind: str = Field(description="`person` or `client`.", examples=["person"])
    id: str = Field(description="The person's or the client's id.", examples=[_PERSON_ID])


class NoteVersionOut(ResponseModel):
    """One version of a note's text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": 1,
                    "author": _AUTHOR,
                    "body": "Called the field office lead.",
                    "reason": None,
                    "created_at": "2026-11-24T10:00:00Z",
                }
            ]
        }
    )

    number: int = Field(description="1 for the original, then one more per correction.")
    author: Author
    body: str | None = Field(description="Null once the case's data was destroyed.")
    reason: str | None = Field(description="Why this correction was made (null for the first).")
    created_at: datetime

    @classmethod
    def of(cls, version: CaseNoteVersion) -> NoteVersionOut:
        return cls(
            number=version.number,
            author=Author(kind=version.author_kind, id=version.author_id),
            body=version.body,
            reason=version.reason,
            created_at=version.created_at,
        )


_NOTE_EXAMPLE: dict[str, Any] = {
    "id": _NOTE_ID,
    "case_id": _CASE_ID,
    "version": 2,
    "author": _AUTHOR,
    "body": "Called the field office lead; the rota confirms both evening shifts.",
    "created_at": "2026-11-24T10:00:00Z",
    "updated_at": "2026-11-24T11:30:00Z",
}


class NoteOut(ResponseModel):
    """A note as it reads now: its current text (the last version)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_NOTE_EXAMPLE]})

    id: uuid.UUID
    case_id: uuid.UUID
    version: int = Field(description="The number of the current version.")
    author: Author = Field(description="Who wrote the note (its first version).")
    body: str | None = Field(description="The current text; null once the case was destroyed.")
    created_at: datetime = Field(description="When the note was written.")
    updated_at: datetime = Field(description="When its current version was written.")

    @classmethod
    def of(cls, note: CaseNote) -> NoteOut:
        return cls(**_note_fields(note))


class NoteDetail(NoteOut):
    """A note with every version of its text, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_NOTE_EXAMPLE,
                    "versions": [
                        {
                            "number": 1,
                            "author": _AUTHOR,
                            "body": "Called the field office lead; the rota confirms both shifts.",
                            "reason": None,
                            "created_at": "2026-11-24T10:00:00Z",
                        },
                        {
                            "number": 2,
                            "author": _AUTHOR,
                            "body": (
                                "Called the field office lead; the rota confirms both evening "
                                "shifts."
                            ),
                            "reason": "Both shifts were evening shifts.",
                            "created_at": "2026-11-24T11:30:00Z",
                        },
                    ],
                }
            ]
        }
    )

    versions: list[NoteVersionOut]

    @classmethod
    def of(cls, note: CaseNote) -> NoteDetail:
        return cls(**_note_fields(note), versions=[NoteVersionOut.of(v) for v in note.versions])


def _note_fields(note: CaseNote) -> dict[str, Any]:
    current = note.versions[-1]
    return {
        "id": note.id,
        "case_id": note.case_id,
        "version": current.number,
        "author": Author(kind=note.author_kind, id=note.author_id),
        "body": current.body,
        "created_at": note.created_at,
        "updated_at": current.created_at,
    }


class NotePage(ResponseModel):
    """One page of a case's notes, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_NOTE_EXAMPLE], "next_cursor": None}]}
    )

    items: list[NoteOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[None],
    )
