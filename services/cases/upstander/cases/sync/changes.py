"""Recording the case change feed: every transaction that changes a case (its row, its
assignments, its external references) adds one `CaseChange` row per case, as it commits.

Why the feed never skips a change: rows are numbered by an autoincrement `seq`, and a reader
resumes after the last `seq` it saw, so a row that committed *after* a higher-numbered one
would be missed. Numbers are therefore taken at commit time (`before_commit`, after the last
flush) and, on PostgreSQL, under a transaction-scoped advisory lock per organisation: within
an organisation, the transaction that takes number n+1 can only do so once the holder of n has
committed. (SQLite has one writer at a time.) Holding the lock only at commit time means a
transaction never waits for it while holding a lock another waiter needs: no deadlock.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from upstander.cases.models import Case, CaseAssignment, CaseRestriction, CaseStatus
from upstander.cases.sync.models import CaseChange, CaseExternalRef
from upstander.kit.clock import coarse, for_reporter
from upstander.kit.contracts import CaseUpdated
from upstander.kit.db import new_id
from upstander.kit.events import EventBus

PENDING = "upstander_case_changes"
# The cases service's event bus, in its sessions' `info` (`start_change_events`).
BUS_KEY = "upstander_cases_bus"
# The advisory lock's namespace (its first key); the second is drawn from the org id.
LOCK_NAMESPACE = 0x5C0A
_STRENGTH = {"updated": 0, "deleted": 1, "created": 2}


def _note(session: Session, org_id: uuid.UUID, case_id: uuid.UUID, kind: str) -> None:
    pending: dict[uuid.UUID, tuple[uuid.UUID, str]] = session.info.setdefault(PENDING, {})
    known = pending.get(case_id)
    if known is None or _STRENGTH[kind] > _STRENGTH[known[1]]:
        pending[case_id] = (org_id, kind)


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.new:
        if isinstance(obj, Case):
            if obj.id is None:
                obj.id = new_id()  # the column default comes at INSERT; the change needs it now
            _note(session, obj.org_id, obj.id, "created")
        elif isinstance(obj, CaseAssignment | CaseExternalRef):
            _note(session, obj.org_id, obj.case_id, "updated")
    for obj in session.dirty:
        if isinstance(obj, Case) and session.is_modified(obj, include_collections=False):
            kind = "deleted" if obj.status == CaseStatus.DELETED else "updated"
            _note(session, obj.org_id, obj.id, kind)
    for obj in session.deleted:
        if isinstance(obj, CaseAssignment | CaseExternalRef):
            _note(session, obj.org_id, obj.case_id, "updated")


def lock_key(org_id: uuid.UUID) -> int:
    return int.from_bytes(org_id.bytes[:4], "big", signed=True)


_TRACKED = (Case, CaseAssignment, CaseExternalRef)


def _number(session: Session) -> None:
    if session.in_nested_transaction():
        # `before_commit` fires when a savepoint is released too: the changes are numbered
        # when the transaction itself commits (a number taken now would come before work
        # still to be done in it).
        return
    unflushed = [*session.new, *session.dirty, *session.deleted]
    if not session.info.get(PENDING) and not any(isinstance(o, _TRACKED) for o in unflushed):
        return  # nothing of a case (another service's session, in a single-process test)
    session.flush()  # what is still unflushed is part of this commit: collect it first
    pending: dict[uuid.UUID, tuple[uuid.UUID, str]] = session.info.pop(PENDING, {})
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        for org_id in sorted({org for org, _kind in pending.values()}):
            session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": LOCK_NAMESPACE, "key": lock_key(org_id)},
            )
    # To the hour, whatever the case: the feed is ordered by its sequence, and a finer time
    # would tell when an anonymous or confidential reporter wrote (docs/scim.md).
    now = coarse(datetime.now(UTC))
    for case_id, (org_id, kind) in pending.items():
        session.add(CaseChange(org_id=org_id, case_id=case_id, kind=kind, changed_at=now))
    _announce(session, [case_id for case_id, (_org, kind) in pending.items() if kind == "updated"])
    session.flush()
    session.info.pop(PENDING, None)


def _announce(session: Session, case_ids: list[uuid.UUID]) -> None:
    """`upstander.case.updated` for each case updated in this transaction: a hint for syncs
    to read the feed (webhooks get its ids, status and version; notify leaves out the people
    the case is hidden from, as for every case event)."""
    bus: EventBus | None = session.info.get(BUS_KEY)
    if bus is None or not case_ids:
        return
    cases = session.execute(
        select(
            Case.id,
            Case.org_id,
            Case.number,
            Case.routed_to,
            Case.status,
            Case.version,
            Case.reporter_mode,
        ).where(Case.id.in_(case_ids), Case.status != CaseStatus.DELETED)
    ).all()
    restricted: dict[uuid.UUID, list[uuid.UUID]] = {row.id: [] for row in cases}
    for case_id, person_id in session.execute(
        select(CaseRestriction.case_id, CaseRestriction.person_id)
        .where(CaseRestriction.case_id.in_(list(restricted)))
        .order_by(CaseRestriction.person_id)
    ):
        if person_id not in restricted[case_id]:
            restricted[case_id].append(person_id)
    for row in cases:
        bus.stage(
            session,
            CaseUpdated.EVENT_TYPE,
            f"case/{row.id}",
            CaseUpdated(
                case_id=row.id,
                number=row.number,
                routed_to=row.routed_to.value,
                restricted_person_ids=restricted[row.id],
                status=row.status.value,
                version=row.version,
            ).model_dump(mode="json"),
            org_id=row.org_id,
            # An anonymous or confidential reporter's case: the hour only (kit.clock).
            at=for_reporter(bus.clock.now(), row.reporter_mode),
        )


def _forget(session: Session, previous_transaction: Any = None, *_args: Any) -> None:
    if previous_transaction is not None and getattr(previous_transaction, "nested", False):
        return  # a savepoint rolled back: what the transaction changed before it still stands
    session.info.pop(PENDING, None)


async def start_change_events(app: FastAPI) -> None:
    """Give the cases service's sessions its event bus, so committed updates are announced
    (`upstander.case.updated`)."""
    info = dict(app.state.sessionmaker.kw.get("info") or {})
    app.state.sessionmaker.configure(info={**info, BUS_KEY: app.state.events})
    install()


def install() -> None:
    """Listen on every session (idempotent); only the cases models are looked at."""
    for name, listener in (
        ("before_flush", _collect),
        ("before_commit", _number),
        ("after_soft_rollback", _forget),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


install()
