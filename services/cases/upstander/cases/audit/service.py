"""Append to and verify an organisation's hash-chained audit trail.

Each entry's `hash` is SHA-256 over the canonical JSON (sorted keys, no spaces) of its fields
and the previous entry's hash, so editing, removing or reordering any entry breaks the chain
from there on. Appends serialise per organisation on its `audit_heads` row: inserted if
missing, then locked with `SELECT ... FOR UPDATE` on PostgreSQL (SQLite serialises writers
itself). Entries hold identifiers and action names only, never case content.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases.service import actor_of
from upstander.cases.models import AuditEntry, AuditHead
from upstander.kit.auth import Principal

GENESIS = "0" * 64
VERIFY_BATCH = 1000


class AuditTrailIsAppendOnly(Exception):
    """Raised when code tries to update or delete an audit entry through the ORM."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_changes(*_args: Any) -> None:
    raise AuditTrailIsAppendOnly("audit entries are never changed or deleted")


def entry_hash(
    *,
    org_id: uuid.UUID,
    seq: int,
    at: datetime,
    actor_kind: str,
    actor_id: str,
    action: str,
    case_id: uuid.UUID | None,
    detail: dict[str, Any] | None,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        {
            "org_id": str(org_id),
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(),
            "actor_kind": actor_kind,
            "actor_id": actor_id,
            "action": action,
            "case_id": str(case_id) if case_id else None,
            "detail": detail or {},
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        org_id=entry.org_id,
        seq=entry.seq,
        at=entry.at,
        actor_kind=entry.actor_kind,
        actor_id=entry.actor_id,
        action=entry.action,
        case_id=entry.case_id,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
    )


async def _locked_head(session: AsyncSession, org_id: uuid.UUID) -> AuditHead:
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(AuditHead)
        .values(org_id=org_id, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=[AuditHead.org_id])
    )
    head = await session.scalar(
        select(AuditHead)
        .where(AuditHead.org_id == org_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert head is not None
    return head


async def append(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_kind: str,
    actor_id: str,
    action: str,
    at: datetime,
    case_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits or vanishes with the change)."""
    head = await _locked_head(session, org_id)
    seq = head.seq + 1
    detail = dict(detail or {})
    entry = AuditEntry(
        org_id=org_id,
        seq=seq,
        at=at,
        actor_kind=actor_kind,
        actor_id=actor_id[:200],
        action=action,
        case_id=case_id,
        detail=detail,
        prev_hash=head.hash,
    )
    entry.hash = _hash_of(entry)
    head.seq, head.hash = seq, entry.hash
    session.add(entry)
    await session.flush()
    return entry


async def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    *,
    at: datetime,
    case_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit what a person or API client did (their org's chain)."""
    if principal.org_id is None:
        return
    kind, actor_id = actor_of(principal)
    await append(
        session,
        org_id=principal.org_id,
        actor_kind=kind,
        actor_id=actor_id,
        action=action,
        at=at,
        case_id=case_id,
        detail=detail,
    )


async def list_entries(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    after_seq: int,
    limit: int,
    case_id: uuid.UUID | None = None,
) -> list[AuditEntry]:
    statement = select(AuditEntry).where(AuditEntry.org_id == org_id, AuditEntry.seq > after_seq)
    if case_id is not None:
        statement = statement.where(AuditEntry.case_id == case_id)
    rows = await session.scalars(statement.order_by(AuditEntry.seq).limit(limit))
    return list(rows.all())


async def verify(
    session: AsyncSession, org_id: uuid.UUID
) -> tuple[bool, int, AuditEntry | None, int | None]:
    """Walk the org's chain: (intact, entries checked, first broken entry, its expected seq).
    A gap (an entry deleted) breaks at the missing seq; entries cut from the end are caught
    against the head."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    while True:
        batch = await list_entries(session, org_id, after_seq=expected_seq - 1, limit=VERIFY_BATCH)
        for entry in batch:
            if (
                entry.seq != expected_seq
                or entry.prev_hash != expected_prev
                or _hash_of(entry) != entry.hash
            ):
                return False, checked, entry, expected_seq
            expected_prev, expected_seq = entry.hash, expected_seq + 1
            checked += 1
        if len(batch) < VERIFY_BATCH:
            break
    head = await session.get(AuditHead, org_id)
    if head is not None and (head.seq != checked or head.hash != expected_prev):
        return False, checked, None, expected_seq
    return True, checked, None, None
