"""Response shapes of the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from upstander.kit.schemas import ResponseModel


class AuditEntryOut(ResponseModel):
    id: uuid.UUID = Field(examples=["7c1e0a52-3b9d-4f0e-8d8e-2f4a6f1d2c3b"])
    seq: int = Field(description="Position in the organisation's chain, from 1.", examples=[42])
    at: datetime = Field(examples=["2026-11-24T10:02:00Z"])
    actor_kind: str = Field(description="`person` or `client`.", examples=["person"])
    actor_id: str = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    action: str = Field(examples=["case.read"])
    case_id: uuid.UUID | None = Field(default=None, examples=[None])
    detail: dict[str, Any] = Field(
        default_factory=dict, description="Identifiers only.", examples=[{"to": "triage"}]
    )
    prev_hash: str = Field(examples=["0" * 64])
    hash: str = Field(examples=["9f2c" + "0" * 60])


class AuditPage(ResponseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[None],
    )


class BrokenLink(ResponseModel):
    seq: int = Field(description="The first position whose entry is missing or altered.")
    id: uuid.UUID | None = Field(
        default=None, description="The entry found there; null when it is missing."
    )


class AuditVerification(ResponseModel):
    intact: bool = Field(examples=[True])
    entries: int = Field(description="Entries checked before the break (or all).", examples=[42])
    first_broken: BrokenLink | None = Field(default=None, examples=[None])
