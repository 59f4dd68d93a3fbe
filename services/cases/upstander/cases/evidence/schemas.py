"""Request and response shapes of evidence: the form fields of an upload, an item, its chain
of custody."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from upstander.cases.models import CustodyAction
from upstander.kit.schemas import ResponseModel

DESCRIPTION_MAX = 10_000
SOURCE_MAX = 500

_ITEM_EXAMPLE: dict[str, Any] = {
    "id": "0b6f3c2a-8d1e-4f7a-9c55-3e2d1f0a9b84",
    "case_id": "5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77",
    "filename": "messages-2026-11-20.png",
    "content_type": "image/png",
    "size": 482113,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "description": "Direct messages the reporter received after the meeting.",
    "source": "Screenshot from the reporter's phone, sent by email",
    "collected_at": "2026-11-21T15:00:00Z",
    "uploaded_by": {"kind": "person", "id": "7d2c6f1e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"},
    "uploaded_at": "2026-11-24T10:02:00Z",
}
_CUSTODY_EXAMPLE: dict[str, Any] = {
    "id": "3e1d2c4b-5a6f-4e7d-8c9b-0a1f2e3d4c5b",
    "action": "uploaded",
    "actor": {"kind": "person", "id": "7d2c6f1e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"},
    "at": "2026-11-24T10:02:00Z",
    "note": None,
}


class EvidenceFieldsIn(BaseModel):
    """The form fields that come with an evidence file (multipart/form-data)."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "description": _ITEM_EXAMPLE["description"],
                    "source": _ITEM_EXAMPLE["source"],
                    "collected_at": _ITEM_EXAMPLE["collected_at"],
                }
            ]
        },
    )

    description: str = Field(
        min_length=1,
        max_length=DESCRIPTION_MAX,
        description="What the file shows and why it matters to the case (sealed).",
    )
    source: str = Field(
        min_length=1,
        max_length=SOURCE_MAX,
        description='Where the file came from, e.g. "screenshot from reporter\'s phone" (sealed).',
    )
    collected_at: AwareDatetime = Field(
        description="When the evidence was collected: ISO 8601 with a timezone, not in the future."
    )


class Actor(ResponseModel):
    """Who did something: a person (`person`, their id) or an API client (`client`, its id)."""

    kind: str = Field(examples=["person"])
    id: str = Field(examples=["7d2c6f1e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"])


class CustodyOut(ResponseModel):
    """One link of the chain of custody."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_CUSTODY_EXAMPLE]}
    )

    id: uuid.UUID
    action: CustodyAction = Field(description="`uploaded`, `viewed`, `downloaded` or `exported`.")
    actor: Actor
    at: datetime = Field(description="When it happened (UTC).")
    note: str | None = Field(default=None, description="A note on the entry, if any (sealed).")


class EvidenceOut(ResponseModel):
    """A piece of evidence. The sealed fields (`filename`, `sha256`, `description`, `source`)
    are null once the case's data was destroyed."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_ITEM_EXAMPLE]})

    id: uuid.UUID
    case_id: uuid.UUID
    filename: str | None = Field(description="The uploaded file's name, made safe.")
    content_type: str = Field(description="The declared (and checked) media type.")
    size: int = Field(description="Bytes.")
    sha256: str | None = Field(
        description="SHA-256 of the bytes as received, lowercase hex; every download carries "
        "it in `X-Content-SHA256`."
    )
    description: str | None
    source: str | None
    collected_at: datetime
    uploaded_by: Actor
    uploaded_at: datetime


class EvidenceDetail(EvidenceOut):
    """A piece of evidence with its whole chain of custody, oldest first."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{**_ITEM_EXAMPLE, "custody": [_CUSTODY_EXAMPLE]}]},
    )

    custody: list[CustodyOut]


class EvidencePage(ResponseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"items": [_ITEM_EXAMPLE], "next_cursor": None}]},
    )

    items: list[EvidenceOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )
