"""Change feeds for syncs: every committed change to one kind of record (cases, people,
training completions), numbered in commit order within its organisation and read back a page
at a time from an opaque cursor that resumes without gaps or repeats.

A service declares a `ChangeFeed` over its table of changes (`seq` autoincrement, `org_id`,
the record's id, `kind`, `changed_at`, and any ids a tombstone must still carry once the
record is gone) and a `collect` hook that, in `before_flush`, notes which records the flush
changes (`ChangeFeed.note`; a bulk statement's hook may note too). As the transaction commits,
the feed writes one change row per record: the strongest kind noted wins (a record created
and then updated in one transaction was `created`).

Why a reader never skips a change: rows are numbered by an autoincrement `seq`, and a reader
resumes after the last `seq` it saw, so a row that committed *after* a higher-numbered one
would be missed. Numbers are therefore taken at commit time (`before_commit`, after the last
flush) and, on PostgreSQL, under a transaction-scoped advisory lock per organisation (and
feed): within an organisation, the transaction that takes number n+1 can only do so once the
holder of n has committed. (SQLite has one writer at a time.) Holding the lock only at commit
time means a transaction never waits for it while holding a lock another waiter needs: no
deadlock. A reader reads one window of changes in one statement (one snapshot): every change
up to the position it returns was committed and read.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from upstander.kit.pagination import InvalidCursor, cursor_values

T = TypeVar("T")

# A page reads at most this many changes per item asked for: changes the caller may not see
# are skipped, and a caller who may see little still gets an answer quickly (and `has_more`).
WINDOW_FACTOR = 4
MAX_LIMIT = 500

NEXT_CURSOR_DESCRIPTION = (
    "Pass back as `cursor` to read on from here; keep it between syncs (it never expires). "
    "Equal to the one sent when there was nothing new."
)
HAS_MORE_DESCRIPTION = "More changes are ready now: call again at once."


# ----------------------------------------------------------------------------- cursors


def encode_cursor(feed: str, seq: int) -> str:
    """The opaque cursor of position `seq` in `feed` (base64url of `["<feed>", seq]`)."""
    raw = json.dumps([feed, seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(feed: str, cursor: str | None) -> int:
    """The position in `feed` of a cursor `encode_cursor` made (0, the beginning, for none);
    anything else, another feed's cursor included, is a 400 `invalid-cursor` problem."""
    if cursor is None:
        return 0
    kind, seq = cursor_values(cursor, 2)
    if kind != feed or isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidCursor()
    return seq


# ----------------------------------------------------------------------------- pages


def assemble(
    rows: Sequence[T],
    *,
    after: int,
    limit: int,
    window: int,
    seq: Callable[[T], int],
    shown: Callable[[T], bool],
) -> tuple[list[T], int, bool]:
    """A page out of the changes read after `after` (at most `window + 1`, in `seq` order):
    at most `limit` shown ones, the position to resume from (past every change read, shown or
    not) and whether more may follow."""
    page: list[T] = []
    position, consumed = after, 0
    for row in rows[:window]:
        if len(page) == limit:
            break
        consumed += 1
        position = seq(row)
        if shown(row):
            page.append(row)
    return page, position, len(rows) > consumed


# ----------------------------------------------------------------------------- recording


@dataclass
class _Noted:
    org_id: uuid.UUID
    kind: str
    columns: dict[str, Any] = field(default_factory=dict)


def lock_key(org_id: uuid.UUID) -> int:
    """The advisory lock's second key, drawn from the organisation's id."""
    return int.from_bytes(org_id.bytes[:4], "big", signed=True)


def _utc_now(_session: Session) -> datetime:
    return datetime.now(UTC)


class ChangeFeed:
    """One feed: its table, how it is recorded and how it is read (see the module's doc).

    - `name`: the cursor's tag (and the session key of what is noted), e.g. `case-changes`.
    - `table`: the mapped change table: `seq`, `org_id`, `<subject>`, `kind`, `changed_at`.
    - `kinds`: the kinds of change, weakest first (the strongest noted in a transaction wins).
    - `lock_namespace`: the advisory lock's first key on PostgreSQL (one per feed, int4).
    - `tracked`: the models whose unflushed presence at commit means there may be changes.
    - `collect(session, feed)`: in `before_flush`, note what the flush changes.
    - `stamp(session)`: the `changed_at` of the transaction's changes (default: now).
    - `after_numbering(session, {subject id: kind})`: once the rows are added (announce).
    """

    def __init__(
        self,
        *,
        name: str,
        table: Any,
        subject: str,
        kinds: Sequence[str],
        lock_namespace: int,
        tracked: tuple[type, ...],
        collect: Callable[[Session, ChangeFeed], None],
        stamp: Callable[[Session], datetime] = _utc_now,
        after_numbering: Callable[[Session, dict[uuid.UUID, str]], None] | None = None,
    ) -> None:
        self.name = name
        self.table = table
        self.subject = subject
        self.strength = {kind: rank for rank, kind in enumerate(kinds)}
        self.lock_namespace = lock_namespace
        self.tracked = tracked
        self._collect_hook = collect
        self.stamp = stamp
        self.after_numbering = after_numbering
        self._pending_key = f"upstander_changefeed:{name}"
        self._listeners = (
            ("before_flush", self._collect),
            ("before_commit", self._number),
            ("after_soft_rollback", self._forget),
        )

    # -- cursors ------------------------------------------------------------------------------

    def encode_cursor(self, seq: int) -> str:
        return encode_cursor(self.name, seq)

    def decode_cursor(self, cursor: str | None) -> int:
        return decode_cursor(self.name, cursor)

    # -- recording ----------------------------------------------------------------------------

    def note(
        self,
        session: Session,
        org_id: uuid.UUID,
        subject_id: uuid.UUID,
        kind: str,
        **columns: Any,
    ) -> None:
        """Record that this transaction changed `subject_id` (`kind`); `columns` are further
        values of its change row (ids a tombstone keeps)."""
        pending: dict[uuid.UUID, _Noted] = session.info.setdefault(self._pending_key, {})
        known = pending.get(subject_id)
        if known is None:
            pending[subject_id] = _Noted(org_id, kind, dict(columns))
            return
        known.columns.update(columns)
        if self.strength[kind] > self.strength[known.kind]:
            known.kind = kind

    def _collect(self, session: Session, _context: Any, _instances: Any) -> None:
        self._collect_hook(session, self)

    def _number(self, session: Session) -> None:
        if session.in_nested_transaction():
            # `before_commit` fires when a savepoint is released too: the changes are numbered
            # when the transaction itself commits (a number taken now would come before work
            # still to be done in it).
            return
        unflushed = [*session.new, *session.dirty, *session.deleted]
        if not session.info.get(self._pending_key) and not any(
            isinstance(obj, self.tracked) for obj in unflushed
        ):
            return  # nothing of this feed's (another service's session, in one process)
        session.flush()  # what is still unflushed is part of this commit: collect it first
        pending: dict[uuid.UUID, _Noted] = session.info.pop(self._pending_key, {})
        if not pending:
            return
        if session.get_bind().dialect.name == "postgresql":
            for org_id in sorted({noted.org_id for noted in pending.values()}):
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                    {"namespace": self.lock_namespace, "key": lock_key(org_id)},
                )
        now = self.stamp(session)
        for subject_id, noted in pending.items():
            session.add(
                self.table(
                    org_id=noted.org_id,
                    kind=noted.kind,
                    changed_at=now,
                    **{**noted.columns, self.subject: subject_id},
                )
            )
        if self.after_numbering is not None:
            self.after_numbering(
                session, {subject_id: noted.kind for subject_id, noted in pending.items()}
            )
        session.flush()
        session.info.pop(self._pending_key, None)

    def _forget(self, session: Session, previous_transaction: Any = None, *_args: Any) -> None:
        if previous_transaction is not None and getattr(previous_transaction, "nested", False):
            return  # a savepoint rolled back: what the transaction changed before still stands
        session.info.pop(self._pending_key, None)

    def install(self) -> None:
        """Listen on every session (idempotent); only this feed's models are looked at."""
        for name, listener in self._listeners:
            if not event.contains(Session, name, listener):
                event.listen(Session, name, listener)

    # -- reading ------------------------------------------------------------------------------

    async def read(
        self,
        session: AsyncSession,
        statement: Select[*tuple[Any, ...]],
        *,
        org_id: uuid.UUID,
        after: int,
        limit: int,
        shown: Callable[[Any], bool],
    ) -> tuple[list[Any], int, bool]:
        """A page of `statement` (which selects the change row first, then whatever `shown`
        and the caller need) after position `after` in the organisation's changes: the rows
        shown, the position to resume from and whether more may follow."""
        window = limit * WINDOW_FACTOR
        seq = self.table.seq
        rows = list(
            (
                await session.execute(
                    statement.where(self.table.org_id == org_id, seq > after)
                    .order_by(seq)
                    .limit(window + 1)
                )
            ).all()
        )
        return assemble(
            rows,
            after=after,
            limit=limit,
            window=window,
            seq=lambda row: int(row[0].seq),
            shown=shown,
        )
