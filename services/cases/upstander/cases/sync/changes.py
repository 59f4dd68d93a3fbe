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

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from upstander.cases.models import Case, CaseAssignment, CaseStatus
from upstander.cases.sync.models import CaseChange, CaseExternalRef
from upstander.kit.db import new_id

PENDING = "upstander_case_changes"
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
    now = datetime.now(UTC)
    for case_id, (org_id, kind) in pending.items():
        session.add(CaseChange(org_id=org_id, case_id=case_id, kind=kind, changed_at=now))
    session.flush()
    session.info.pop(PENDING, None)


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(PENDING, None)


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
