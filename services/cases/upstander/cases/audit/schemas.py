"""Response shapes of the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from upstander.kit.schemas import ResponseModel


class AuditEntryOut(ResponseModel):
    """One entry of the chain. An entry that names a case hidden from the reader is withheld:
    `redacted` is true and only `seq`, `hash` and `prev_hash` are given (the rest null or
    empty), so the chain's links can still be followed without learning the case, the actor
    or the action."""

    id: uuid.UUID | None = Field(
        default=None,
        description="Null when redacted.",
        examples=["7c1e0a52-3b9d-4f0e-8d8e-2f4a6f1d2c3b"],
    )
    seq: int = Field(description="Position in the organisation's chain, from 1.", examples=[42])
    at: datetime | None = Field(
        default=None, description="Null when redacted.", examples=["2026-11-24T10:02:00Z"]
    )
    actor_kind: str | None = Field(
        default=None,
        description="`person`, `client` or `system`; null when redacted.",
        examples=["person"],
    )
    actor_id: str | None = Field(
        default=None,
        description="Null when redacted.",
        examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"],
    )
    action: str | None = Field(
        default=None, description="Null when redacted.", examples=["case.read"]
    )
    case_id: uuid.UUID | None = Field(default=None, examples=[None])
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="Identifiers only; empty when redacted.",
        examples=[{"to": "triage"}],
    )
    prev_hash: str = Field(examples=["0" * 64])
    hash: str = Field(examples=["9f2c" + "0" * 60])
    redacted: bool = Field(
        default=False,
        description="True when the entry names a case hidden from you.",
        examples=[False],
    )

    @classmethod
    def withheld(cls, seq: int, prev_hash: str, hash: str) -> AuditEntryOut:
        return cls(seq=seq, prev_hash=prev_hash, hash=hash, redacted=True)


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
        default=None,
        description=(
            "The entry found there; null when it is missing, or when it names a case hidden "
            "from you."
        ),
    )


class AuditVerification(ResponseModel):
    """The whole chain is checked, hidden cases' entries included; the answer holds counts,
    positions and ids only, never what an entry says."""

    intact: bool = Field(examples=[True])
    entries: int = Field(description="Entries checked before the break (or all).", examples=[42])
    first_broken: BrokenLink | None = Field(default=None, examples=[None])
