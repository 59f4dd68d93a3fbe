"""Tokens die with access: each service's ledger of the access changes the gateway announces,
and the check its token verifier runs on every staff and API-client token.

The gateway counts every change to what a person or an API client may do (deactivation, a
role change, a move out of the organisation; for clients also a change of scopes) in an
`access_version`, and signs the current count into every token it issues. It announces each
change as `upstander.access.changed` (`AccessChanged`: ids, the count and an active flag,
no personal data), and an organisation's deactivation likewise. Each service keeps the
latest of those in its `access_ledger` table, and refuses (401 `token-revoked`) a token
whose count is lower than the ledger's, whose subject is inactive, or whose organisation is.

A counter, not a time: a token signed in the same second as a change, or by a sign-in that
raced with it, is ordered exactly, whatever the clocks say. A subject with no ledger row has
never changed (its tokens carry 0). The ledger holds the highest version seen, so events
that arrive twice or out of order change nothing.

The check reads the ledger through a small in-process cache (`cache_seconds`, default 1 s):
on a cache hit it costs a dictionary lookup; the event handler refreshes the entry as soon
as its transaction commits, so in one process a change takes effect on the next request.
See docs/threat-model.md ("Tokens die with access") for the window and the measured cost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Integer, String, Uuid, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.contracts import AccessChanged, parse_event
from upstander.kit.db import UTCDateTime

if TYPE_CHECKING:
    from upstander.kit.events import CloudEvent, EventContext

ACCESS_CHANGED = "upstander.access.changed"
# The private claim the gateway signs into staff and API-client tokens.
ACCESS_VERSION_CLAIM = "access_version"
# Token kinds the ledger speaks for; reporter tokens (one report, from a receipt code) and
# service tokens are not a person's or a client's access.
REVOCABLE_KINDS = frozenset({PrincipalKind.STAFF, PrincipalKind.CLIENT})

# `upstander.access.changed` data is a shared contract; imported here under its old address.
__all__ = ["ACCESS_CHANGED", "AccessChanged", "AccessLedger", "on_access_changed"]


# ----------------------------------------------------------------------------- the table


class AccessRecordMixin:
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


def access_table(base: type) -> type[AccessRecordMixin]:
    """The `access_ledger` table on a service's own declarative base."""
    return type(
        "AccessRecord",
        (AccessRecordMixin, base),
        {"__module__": base.__module__, "__tablename__": "access_ledger"},
    )


# ----------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class AccessState:
    version: int
    active: bool
    changed_at: datetime

    def newer_than(self, other: AccessState | None) -> bool:
        """Whether this state supersedes `other` (a higher version; for equal versions, a
        change at the same time or later — organisations, whose version stays 0)."""
        if other is None:
            return True
        if self.version != other.version:
            return self.version > other.version
        return self.changed_at >= other.changed_at


Key = tuple[str, str]


def claimed_version(principal: Principal) -> int | None:
    """The access version the token was signed with: 0 for a token without one (signed before
    versions existed), None for a malformed one (never signed by the gateway: refused)."""
    value = principal.claims.get(ACCESS_VERSION_CLAIM, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def is_revoked_by(
    principal: Principal, subject: AccessState | None, org: AccessState | None
) -> bool:
    """The rule, on states already read: the subject is inactive or changed since the token
    was signed, or its organisation is inactive."""
    version = claimed_version(principal)
    if version is None:
        return True
    if subject is not None and (not subject.active or version < subject.version):
        return True
    return org is not None and not org.active


# Keys one ledger query asks for at most.
READ_BATCH = 200


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a read's failure as seen: its waiters may all have been cancelled meanwhile."""
    if not future.cancelled():
        future.exception()


class AccessLedger:
    """Reads and keeps one service's `access_ledger`, behind a small cache. One per app:
    `app.state.access_ledger`; its `is_revoked` is the token verifier's `revocation_check`."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        table: type[Any],  # from `access_table`: an `AccessRecordMixin` mapped class
        *,
        cache_seconds: float = 1.0,
        max_entries: int = 10_000,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = table
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        # key -> (monotonic expiry, state or None for "no row": never changed)
        self._cache: dict[Key, tuple[float, AccessState | None]] = {}
        # Reads under way: each key being read, and the keys waiting for the next read.
        self._reading: dict[Key, asyncio.Future[AccessState | None]] = {}
        self._queued: list[Key] = []
        self._reader: asyncio.Task[None] | None = None

    @staticmethod
    def keys_for(principal: Principal) -> tuple[Key, Key | None]:
        org = ("org", str(principal.org_id)) if principal.org_id is not None else None
        return (str(principal.kind), principal.subject), org

    async def is_revoked(self, principal: Principal) -> bool:
        if principal.kind not in REVOCABLE_KINDS:
            return False
        subject_key, org_key = self.keys_for(principal)
        wanted = [subject_key] if org_key is None else [subject_key, org_key]
        states = await self.states(wanted)
        org_state = states.get(org_key) if org_key is not None else None
        return is_revoked_by(principal, states.get(subject_key), org_state)

    async def states(self, keys: Iterable[Key]) -> dict[Key, AccessState | None]:
        """The ledger's state of each key (None: no row), from the cache while it is fresh,
        else in one query."""
        now = time.monotonic()
        found: dict[Key, AccessState | None] = {}
        missing: list[Key] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                found[key] = cached[1]
            else:
                missing.append(key)
        if missing:
            found.update(await self._read(missing))
        return found

    async def _read(self, keys: list[Key]) -> dict[Key, AccessState | None]:
        """The ledger's state of `keys`, read together with every other key that misses the
        cache meanwhile: when many requests miss at once (a cache entry expiring under load,
        a restart), they cost one query per `READ_BATCH` keys, not one each, through the
        ledger's small pool. A caller cancelled while waiting leaves the read to the others."""
        loop = asyncio.get_running_loop()
        waits: dict[Key, asyncio.Future[AccessState | None]] = {}
        for key in keys:
            future = self._reading.get(key)
            if future is None or future.get_loop() is not loop:
                future = loop.create_future()
                future.add_done_callback(_retrieved)
                self._reading[key] = future
                self._queued.append(key)
            waits[key] = future
        if self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._read_queued())
        return {key: await asyncio.shield(future) for key, future in waits.items()}

    async def _read_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:READ_BATCH], self._queued[READ_BATCH:]
            now = time.monotonic()
            try:
                loaded = await self._load(batch)
            except BaseException as error:
                for key in batch:
                    future = self._reading.pop(key)
                    if isinstance(error, asyncio.CancelledError):
                        future.cancel()
                    elif not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    raise
                continue
            for key in batch:
                state = loaded.get(key)
                self.remember(key, state, now)
                future = self._reading.pop(key)
                if not future.done():
                    future.set_result(state)

    async def _load(self, keys: list[Key]) -> dict[Key, AccessState]:
        table = self.table
        condition = or_(
            *(and_(table.kind == kind, table.subject == subject) for kind, subject in keys)
        )
        async with self.sessionmaker() as session:
            rows = (await session.execute(select(table).where(condition))).scalars().all()
        return {
            (row.kind, row.subject): AccessState(row.version, row.active, row.changed_at)
            for row in rows
        }

    def remember(self, key: Key, state: AccessState | None, now: float | None = None) -> None:
        if self.cache_seconds <= 0:
            return
        now = time.monotonic() if now is None else now
        if len(self._cache) >= self.max_entries:
            # Cheap and bounded: drop what expired, and everything if that was not enough.
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, state)

    async def apply(self, session: AsyncSession, change: AccessChanged) -> AccessState:
        """Record a change in the caller's transaction, unless the ledger already holds a newer
        one (a repeat, or an event overtaken by a later one). Returns the state now held."""
        incoming = AccessState(change.version, change.active, change.changed_at)
        row = await session.get(self.table, (change.kind, change.subject))
        if row is None:
            session.add(
                self.table(
                    kind=change.kind,
                    subject=change.subject,
                    org_id=change.org_id,
                    version=change.version,
                    active=change.active,
                    changed_at=change.changed_at,
                )
            )
            await session.flush()
            return incoming
        held = AccessState(row.version, row.active, row.changed_at)
        if not incoming.newer_than(held):
            return held
        row.version, row.active = incoming.version, incoming.active
        row.changed_at = incoming.changed_at
        if change.org_id is not None:
            row.org_id = change.org_id
        await session.flush()
        return incoming


async def on_access_changed(event: CloudEvent, ctx: EventContext) -> None:
    """The kit's handler of `upstander.access.changed` (every service with a ledger gets it):
    record the change, and once it is committed, let this process's cache see it at once."""
    ledger = ctx.resource("access_ledger", AccessLedger)
    if ledger is None:
        return
    change = parse_event(event, AccessChanged)  # InvalidEvent (400, dead letter) if malformed
    state = await ledger.apply(ctx.session, change)
    key: Key = (change.kind, change.subject)
    ctx.after_commit(lambda: ledger.remember(key, state))
