"""Append to and verify an organisation's hash-chained audit trail.

Each entry's `hash` is SHA-256 over the canonical JSON (sorted keys, no spaces) of its fields
and the previous entry's hash, so editing, removing or reordering any entry breaks the chain
from there on. Appends serialise per organisation on its `audit_heads` row: inserted if
missing, then locked with `SELECT ... FOR UPDATE` on PostgreSQL (SQLite serialises writers
itself). Entries hold identifiers and action names only, never case content.

Reading the trail follows the per-case rules (`readable`): an entry that names a case hidden
from the reader (restricted from them, or from the person who owns the API client reading)
is withheld — as a placeholder that keeps only `seq`, `hash` and `prev_hash` in a listing
of the whole trail, so the chain can still be followed, and not at all in a listing of one
case. A deleted case's history goes with it (its restrictions are shredded, so whom it was
hidden from can no longer be told): only the `case.deleted` entry stays readable.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases.service import acting_person, actor_of
from upstander.cases.models import AuditEntry, AuditHead, Case, CaseRestriction, CaseStatus
from upstander.cases.roles import AUDITORS
from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.db import upsert_insert

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
    await session.execute(
        upsert_insert(session, AuditHead)
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


# ----------------------------------------------------------------------------- who reads what

# The action of the entry retention writes when it deletes a case (readable by every reader).
CASE_DELETED = "case.deleted"


@dataclass(frozen=True)
class AuditReader:
    """Whose restrictions bind a reader of the trail: `person_id`, or nobody at all
    (`person_id` None), in which case every entry is withheld."""

    person_id: uuid.UUID | None


async def audit_reader(session: AsyncSession, principal: Principal) -> AuditReader:
    """A staff auditor or admin reads as themselves. An API client reads as its owner, and only
    while the owner could read the trail themselves (an auditor or admin in the directory,
    active): otherwise, and for a client nobody owns, everything is withheld."""
    person = await acting_person(session, principal)
    if person is None:
        return AuditReader(None)
    if principal.kind == PrincipalKind.CLIENT and not person.roles & set(AUDITORS):
        return AuditReader(None)
    return AuditReader(person.id)


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def cases_named(entry: AuditEntry) -> set[uuid.UUID]:
    """Every case an entry names: its `case_id`, and any case id in its detail (a listing's
    `case_ids`, a link's `linked_case_id`: keys `case_id`, `*_case_id`, `case_ids`,
    `*_case_ids`), so an entry about one case cannot give away another."""
    named: set[uuid.UUID] = {entry.case_id} if entry.case_id is not None else set()
    for key, value in (entry.detail or {}).items():
        if key == "case_id" or key.endswith("_case_id"):
            values: list[Any] = [value]
        elif key == "case_ids" or key.endswith("_case_ids"):
            values = list(value) if isinstance(value, list) else [value]
        else:
            continue
        named.update(case_id for case_id in map(_as_uuid, values) if case_id is not None)
    return named


@dataclass(frozen=True)
class HiddenCases:
    """Cases a reader may not hear about: `restricted` from them (whatever the reason:
    involved, excluded, chain, recused) and `deleted` ones."""

    restricted: set[uuid.UUID]
    deleted: set[uuid.UUID]

    def withholds(self, entry: AuditEntry) -> bool:
        named = cases_named(entry)
        if named & self.restricted:
            return True
        # The deletion record of a deleted case stays readable; the rest of its history not.
        gone = named & self.deleted
        return bool(gone) and not (entry.action == CASE_DELETED and gone == {entry.case_id})


async def hidden_cases(
    session: AsyncSession, reader: AuditReader, org_id: uuid.UUID, case_ids: Collection[uuid.UUID]
) -> HiddenCases:
    """Which of `case_ids` are hidden from `reader` (see `HiddenCases`)."""
    wanted = set(case_ids)
    if not wanted:
        return HiddenCases(set(), set())
    deleted = await session.scalars(
        select(Case.id).where(
            Case.org_id == org_id, Case.id.in_(wanted), Case.status == CaseStatus.DELETED
        )
    )
    restricted = await session.scalars(
        select(CaseRestriction.case_id).where(
            CaseRestriction.org_id == org_id,
            CaseRestriction.case_id.in_(wanted),
            CaseRestriction.person_id == reader.person_id,
        )
    )
    return HiddenCases(restricted=set(restricted), deleted=set(deleted))


@dataclass(frozen=True)
class ReadableEntry:
    entry: AuditEntry
    redacted: bool


async def readable(
    session: AsyncSession,
    reader: AuditReader,
    org_id: uuid.UUID,
    entries: Sequence[AuditEntry],
) -> list[ReadableEntry]:
    """`entries` as `reader` may read them: withheld (`redacted`) when the reader is nobody,
    or when the entry names a case hidden from them (see the module)."""
    if reader.person_id is None:
        return [ReadableEntry(entry, True) for entry in entries]
    named: set[uuid.UUID] = set()
    for entry in entries:
        named |= cases_named(entry)
    hidden = await hidden_cases(session, reader, org_id, named)
    return [ReadableEntry(entry, hidden.withholds(entry)) for entry in entries]


async def case_hidden_from(
    session: AsyncSession, reader: AuditReader, org_id: uuid.UUID, case_id: uuid.UUID
) -> bool:
    """Whether the trail of one case is closed to `reader` (restricted from them, or nobody
    answers for the reader). A deleted case's trail is open: its entries, but the deletion
    record, are withheld one by one."""
    if reader.person_id is None:
        return True
    return bool((await hidden_cases(session, reader, org_id, {case_id})).restricted)


async def read_page(
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    *,
    after_seq: int,
    limit: int,
    case_id: uuid.UUID | None = None,
) -> tuple[list[ReadableEntry], str | None]:
    """One page of the trail as `principal` may read it, and the next page's cursor.

    A listing of the whole trail keeps withheld entries as placeholders (`redacted`), so the
    chain's links can be followed; a listing of one case is no chain, so there they are left
    out, and a case hidden from the reader reads as an unknown one: nothing, no next page."""
    reader = await audit_reader(session, principal)
    if case_id is not None and await case_hidden_from(session, reader, org_id, case_id):
        return [], None
    entries = await list_entries(
        session, org_id, after_seq=after_seq, limit=limit + 1, case_id=case_id
    )
    next_cursor = None
    if len(entries) > limit:
        entries = entries[:limit]
        next_cursor = str(entries[-1].seq)
    shown = await readable(session, reader, org_id, entries)
    if case_id is not None:
        shown = [entry for entry in shown if not entry.redacted]
    return shown, next_cursor
