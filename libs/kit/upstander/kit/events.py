"""The event backbone: a transactional outbox, a transport that carries it, and an inbox that
makes consumers idempotent. docs/events.md is the guide; this is the machinery.

- `publish()` writes the event to the service's outbox in the caller's transaction, so an
  event exists if and only if the change that caused it committed: one row per subscribing
  service (kit catalogue) on the HTTP transport, one row per event on NATS (the broker fans
  it out to whoever subscribes, now or later).
- The transport (`EventTransport`) is chosen by `UPSTANDER_EVENT_TRANSPORT`:
  `HttpRelay` (here, the embedded default: POSTs batches to `/{service}/internal/events/batch`)
  or `upstander.kit.jetstream.NatsTransport` (NATS JetStream). Both claim due outbox rows the
  same way: the oldest pending row of each subject only, so events about one thing leave in
  order; with a short lease renewed while the batch is in flight (a crashed relay's rows
  come back within seconds) and `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas share
  the work. Failures retry with exponential backoff and jitter.
- `EventConsumer` runs a handler and records the event id in the inbox in one transaction,
  and acknowledges repeats without running the handler again (at-least-once delivery,
  exactly-once effect). Handlers take the event and a typed `EventContext`, never a web
  request, so either transport drives them.
- An event that can never succeed (malformed data: `BadRequest`, a Pydantic
  `ValidationError`, `PermanentEventError`) is a dead letter at once with its reason: the
  publisher's outbox row on HTTP, an inbox row with status `dead` on NATS. Anything else is
  retried.
- `EventPruner` deletes delivered outbox rows and old inbox ids on a schedule.
- Payloads of sensitive types (report content) are sealed with the deployment's key in the
  outbox and erased once delivered; on NATS every payload travels sealed.
- Timing of anonymous reporters: a publisher passes `at=` (a time already coarsened with
  `upstander.kit.clock.coarse`) and the row keeps no finer time. An event whose `time` is on
  the hour is treated as coarse all the way: its delivery time, the consumer's inbox row and
  the consumer's log lines (access line included) keep the hour only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal, TypeVar

import httpx
from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from upstander.kit.auth import Principal, require_roles, service_caller
from upstander.kit.catalogue import SENSITIVE_TYPES, subscribers
from upstander.kit.clock import Clock, coarse, is_coarse
from upstander.kit.crypto import Keyring, Vault
from upstander.kit.db import CommittingRoute, UTCDateTime, get_session
from upstander.kit.errors import BadRequest, NotFound, ProblemError, problem_responses
from upstander.kit.loops import PeriodicTask, failure_summary
from upstander.kit.observability import COARSE_TIME, keep_time_coarse
from upstander.kit.scopes import Scope, require_scope
from upstander.kit.settings import KitSettings

log = logging.getLogger("upstander.events")

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
# Inbox statuses: the event took effect (or had no handler), or it can never succeed.
PROCESSED = "processed"
# The outbox destination of an event a broker fans out (NATS): one row, whoever subscribes.
BROKER = "broker"

T = TypeVar("T")


# ----------------------------------------------------------------------------- tables


class OutboxMixin:
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    destination: Mapped[str] = mapped_column(String(32))
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sealed_with: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxMixin:
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    # Indexed for pruning (EventPruner).
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # `processed`, or `dead` with the reason: a dead letter the broker will not bring again.
    status: Mapped[str] = mapped_column(String(16), default=PROCESSED, server_default=PROCESSED)
    reason: Mapped[str | None] = mapped_column(String(300), nullable=True)


def event_tables(base: type) -> tuple[type[OutboxMixin], type[InboxMixin]]:
    """The outbox and inbox tables on a service's own declarative base. The classes take the
    base's module, so each service's pair has its own name in SQLAlchemy's class registry."""
    outbox = type(
        "Outbox",
        (OutboxMixin, base),
        {
            "__module__": base.__module__,
            "__tablename__": "outbox",
            "__table_args__": (
                UniqueConstraint("event_id", "destination"),
                Index("ix_outbox_due", "status", "next_attempt_at"),
                Index("ix_outbox_order", "destination", "subject", "seq"),
            ),
        },
    )
    inbox = type(
        "Inbox", (InboxMixin, base), {"__module__": base.__module__, "__tablename__": "inbox"}
    )
    return outbox, inbox


# ----------------------------------------------------------------------------- envelope


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode; `orgid` is an extension attribute."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(examples=["5f0c1b9e-4c1a-4f0e-9d8e-2f4a6f1d2c3b"])
    source: str = Field(examples=["/intake"])
    type: str = Field(examples=["upstander.report.submitted"])
    subject: str | None = Field(default=None, examples=["report/5f0c1b9e"])
    time: datetime
    datacontenttype: str = "application/json"
    # The contract (type and version) `data` follows: its JSON Schema's `$id`
    # (`upstander.kit.contracts.schema_uri`). Absent: version 1.
    dataschema: str | None = Field(
        default=None,
        examples=["https://upstander.dev/events/schemas/upstander.report.submitted.v1.json"],
    )
    orgid: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def org_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.orgid) if self.orgid else None

    @property
    def event_id(self) -> uuid.UUID:
        """The id as a UUID (`ValueError` if it is not one: such an event is malformed)."""
        return uuid.UUID(self.id)


# ----------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class Subscription:
    """One ordered flow of events a service consumes. On NATS it is one durable consumer per
    lane, named `<service>-<name>-<lane>`, filtered on `<types>.<lane>`. `types` is a NATS
    filter over event types (`upstander.report.*`): NATS 2.9 gives a consumer one filter,
    and events of one subscription about one subject arrive in the order they were written
    (a report's attachments after the report)."""

    name: str
    types: str

    def __post_init__(self) -> None:
        tokens = self.types.split(".")
        if (
            len(tokens) != 3
            or tokens[0] != "upstander"
            or not all(tokens)
            or ">" in self.types
            or not self.name.replace("_", "").isalnum()
        ):
            raise ValueError(f"not a subscription: {self.name!r} on {self.types!r}")


def subscriptions_for(patterns: Iterable[str]) -> tuple[Subscription, ...]:
    """The default declaration: one subscription per noun the handlers name
    (`upstander.person.*` and `upstander.person.deactivated` → `person` on
    `upstander.person.*`), so every event about one kind of thing stays in one order."""
    nouns: set[str] = set()
    for pattern in patterns:
        tokens = pattern.split(".")
        if len(tokens) != 3 or tokens[0] != "upstander" or "*" in tokens[1]:
            raise ValueError(f"handler pattern {pattern!r} is not upstander.<noun>.<verb>")
        nouns.add(tokens[1])
    return tuple(Subscription(noun, f"upstander.{noun}.*") for noun in sorted(nouns))


# ----------------------------------------------------------------------------- publishing


class EventBus:
    """Per-app publisher: knows the service's outbox table, clock and sealing key."""

    def __init__(
        self,
        service: str,
        outbox: Any,
        inbox: Any,
        keyring: Keyring,
        clock: Clock,
        *,
        broker: bool = False,
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.inbox = inbox
        self.keyring = keyring
        self.clock = clock
        # True on NATS: one row per event, fanned out by the broker.
        self.broker = broker
        self.transport: EventTransport | None = None

    def destinations(self, type: str) -> tuple[str, ...]:
        return (BROKER,) if self.broker else subscribers(type)

    async def publish(
        self,
        session: AsyncSession,
        type: str,
        subject: str,
        data: Mapping[str, Any],
        *,
        org_id: uuid.UUID | None,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """Write the event in the session's transaction; wake the transport once that
        transaction commits. `at` (default: now) is the event's `time` and every time its
        rows hold: pass an hour-coarse one for an anonymous reporter's action."""
        return self.stage(session.sync_session, type, subject, data, org_id=org_id, at=at)

    def stage(
        self,
        session: Session,
        type: str,
        subject: str,
        data: Mapping[str, Any],
        *,
        org_id: uuid.UUID | None,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """`publish` for synchronous contexts, such as a `before_flush` hook."""
        event_id = uuid.uuid4()
        now = self.clock.now()
        stamp = at if at is not None else now
        raw = json.dumps(dict(data), default=str, separators=(",", ":")).encode()
        for destination in self.destinations(type):
            payload, sealed_with = raw, None
            if type in SENSITIVE_TYPES:
                sealed_with, payload = self.keyring.wrap(raw, _aad(event_id, destination))
            session.add(
                self.outbox(
                    event_id=event_id,
                    destination=destination,
                    org_id=org_id,
                    type=type,
                    subject=subject,
                    source=f"/{self.service}",
                    time=stamp,
                    payload=payload,
                    sealed_with=sealed_with,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=min(stamp, now),
                    created_at=stamp,
                )
            )
        if self.transport is not None:
            self.transport.wake_after_commit(session)
        return event_id

    def envelope(self, row: OutboxMixin) -> dict[str, Any]:
        payload = row.payload or b"{}"
        if row.sealed_with:
            payload = self.keyring.unwrap(
                row.sealed_with, payload, _aad(row.event_id, row.destination)
            )
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": str(row.event_id),
            "source": row.source,
            "type": row.type,
            "subject": row.subject,
            "time": row.time.isoformat(),
            "datacontenttype": "application/json",
        }
        dataschema = data_schema(row.type)
        if dataschema is not None:
            envelope["dataschema"] = dataschema
        envelope["orgid"] = str(row.org_id) if row.org_id else None
        envelope["data"] = json.loads(payload)
        return envelope


def data_schema(event_type: str) -> str | None:
    """The CloudEvents `dataschema` of an event of `event_type` as this code publishes it: the
    JSON Schema `$id` of its contract's latest version (what publishers build their data with:
    `upstander.kit.contracts`), or None for a type without a contract. Consumers read the
    version from it (`contracts.version_of`)."""
    # The contracts import this module (CloudEvent, PermanentEventError): import them late.
    from upstander.kit.contracts import latest_version, schema_uri

    version = latest_version(event_type)
    return schema_uri(event_type, version) if version is not None else None


def _is_coarse(moment: datetime) -> bool:
    """An event time on the hour: published for an anonymous reporter (see the module)."""
    return moment.tzinfo is not None and is_coarse(moment)


def _aad(event_id: uuid.UUID, destination: str) -> bytes:
    return b"outbox:" + event_id.bytes + destination.encode()


# ----------------------------------------------------------------------------- consuming


class PermanentEventError(Exception):
    """Raised by a handler for an event that can never succeed, however often it comes:
    it becomes a dead letter at once with this message as its reason (keep it free of
    content: ids and field names only)."""


def is_permanent(error: BaseException) -> bool:
    """Whether retrying cannot help: malformed data. `NotFound` and `Conflict` are not (the
    event they wait for may still arrive), nor is anything unexpected."""
    return isinstance(error, BadRequest | ValidationError | PermanentEventError)


def failure_reason(error: BaseException) -> str:
    """A dead letter's reason: the problem's title and detail and the fields at fault, which
    this codebase writes without content; for anything else, the exception's type."""
    if isinstance(error, ValidationError):
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        return ("invalid data: " + ", ".join(fields))[:300]
    if isinstance(error, ProblemError):
        reason = f"{error.status} {error.detail or error.title}"
        at_fault = error.extra.get("fields")
        if at_fault:
            reason += " (" + ", ".join(str(f) for f in at_fault) + ")"
        return reason[:300]
    if isinstance(error, PermanentEventError):
        return str(error)[:300]
    return type(error).__name__


@dataclass
class EventContext:
    """What a handler works with: the transaction its effect and the inbox row share, and
    the app's long-lived parts. Built by the kit for every event (`EventConsumer`)."""

    session: AsyncSession
    bus: EventBus
    clock: Clock
    settings: KitSettings
    http: httpx.AsyncClient
    # The app's state, for `resource()`: each service's own workers and helpers.
    state: Any = field(repr=False)
    _after_commit: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def vault(self) -> Vault:
        """The service's vault (cases, intake, notify seal under per-owner data keys)."""
        return self.require("vault", Vault)

    def resource(self, name: str, kind: type[T]) -> T | None:
        """The app's `name` (an attribute of its state) if it exists and is a `kind`."""
        value = getattr(self.state, name, None)
        return value if isinstance(value, kind) else None

    def require(self, name: str, kind: type[T]) -> T:
        value = self.resource(name, kind)
        if value is None:
            raise RuntimeError(f"the app has no {name} ({kind.__name__})")
        return value

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the handler's transaction has committed (a cache refresh,
        waking a worker); never if it rolls back."""
        self._after_commit.append(callback)

    @classmethod
    def for_app(cls, app: FastAPI, session: AsyncSession) -> EventContext:
        state = app.state
        return cls(
            session=session,
            bus=state.events,
            clock=state.clock,
            settings=state.settings,
            http=state.http,
            state=state,
        )


Handler = Callable[[CloudEvent, EventContext], Awaitable[None]]
DeliveryStatus = Literal["processed", "duplicate", "ignored"]


class EventConsumer:
    """Runs the service's handlers, each event exactly once in effect, for any transport."""

    def __init__(
        self,
        service: str,
        app: FastAPI,
        handlers: Mapping[str, Handler],
        subscriptions: Sequence[Subscription] | None = None,
    ) -> None:
        self.service = service
        self.app = app
        self.handlers = dict(handlers)
        self.subscriptions = (
            tuple(subscriptions) if subscriptions is not None else subscriptions_for(self.handlers)
        )

    @property
    def bus(self) -> EventBus:
        bus: EventBus = self.app.state.events
        return bus

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        maker: async_sessionmaker[AsyncSession] = self.app.state.sessionmaker
        return maker

    def handler_for(self, event_type: str) -> Handler | None:
        """Exact types win over patterns."""
        if event_type in self.handlers:
            return self.handlers[event_type]
        for pattern, handler in self.handlers.items():
            if fnmatchcase(event_type, pattern):
                return handler
        return None

    def _received_at(self, event: CloudEvent) -> datetime:
        now = self.bus.clock.now()
        return coarse(now) if _is_coarse(event.time) else now

    async def handle(self, event: CloudEvent) -> DeliveryStatus:
        """Run the event's handler and record it in the inbox, in one transaction. A repeat
        (even one recorded dead) is acknowledged without running anything. The handler's
        exception propagates after the rollback; `is_permanent` tells what it means."""
        async with self.sessionmaker() as session:
            context = EventContext.for_app(self.app, session)
            async with session.begin():
                status = await self._run(event, context)
        for callback in context._after_commit:
            callback()
        return status

    async def handle_all(self, events: Sequence[CloudEvent]) -> list[DeliveryStatus | Exception]:
        """Each event as `handle` runs it, in order: its status, or the exception it raised.

        On SQLite the batch is one transaction and each event a savepoint in it: an event that
        fails is rolled back alone, as its own transaction would be, and the others commit
        together, with one sync of the file to disk instead of one per event (SQLite's commit
        waits for the disk; under a flood of reports that wait was most of cases' time:
        docs/performance.md). The after-commit callbacks run once that commit is done. If the
        commit itself fails, every event fails with it and is delivered again. On PostgreSQL
        each event keeps its own transaction, so that one event's locks (a case number's
        counter row) are held for that event only, not for the batch."""
        if len(events) < 2 or not self._one_transaction():
            outcomes: list[DeliveryStatus | Exception] = []
            for event in events:
                try:
                    outcomes.append(await self.handle(event))
                except Exception as error:
                    outcomes.append(error)
            return outcomes
        outcomes = []
        callbacks: list[Callable[[], None]] = []
        try:
            async with self.sessionmaker() as session, session.begin():
                # The write lock first: the savepoints then nest in a transaction that can
                # write (one begun by a read could not once another writer has committed).
                await (await session.connection()).exec_driver_sql("BEGIN IMMEDIATE")
                for event in events:
                    context = EventContext.for_app(self.app, session)
                    try:
                        async with session.begin_nested():
                            outcomes.append(await self._run(event, context))
                    except Exception as error:
                        outcomes.append(error)
                    else:
                        callbacks.extend(context._after_commit)
        except Exception as error:  # the commit (or the session) failed: nothing was kept
            return [error] * len(events)
        for callback in callbacks:
            callback()
        return outcomes

    def _one_transaction(self) -> bool:
        bind = self.sessionmaker.kw.get("bind")
        return bind is not None and bind.dialect.name == "sqlite"

    async def _run(self, event: CloudEvent, context: EventContext) -> DeliveryStatus:
        """The event's effect and its inbox row, in the caller's transaction."""
        bus, session = self.bus, context.session
        event_id = event.event_id
        if await session.get(bus.inbox, event_id) is not None:
            return "duplicate"
        handler = self.handler_for(event.type)
        if handler is not None:
            await handler(event, context)
        session.add(
            bus.inbox(
                event_id=event_id,
                type=event.type[:128],
                source=event.source[:64],
                received_at=self._received_at(event),
                status=PROCESSED,
            )
        )
        return "processed" if handler is not None else "ignored"

    async def record_dead(
        self, event_id: uuid.UUID, event_type: str, source: str, reason: str, coarse_time: bool
    ) -> None:
        """Keep an event that can never succeed as a dead letter in the inbox (the broker's
        copy is terminated): seen once, with its reason, and never run again."""
        now = self.bus.clock.now()
        async with self.sessionmaker() as session:
            try:
                async with session.begin():
                    if await session.get(self.bus.inbox, event_id) is not None:
                        return
                    session.add(
                        self.bus.inbox(
                            event_id=event_id,
                            type=event_type[:128],
                            source=source[:64],
                            received_at=coarse(now) if coarse_time else now,
                            status=DEAD,
                            reason=reason[:300],
                        )
                    )
            except IntegrityError:
                return  # another replica recorded it first


# ----------------------------------------------------------------------------- service tokens


class ServiceTokens:
    """A service token from the gateway's client-credentials grant, cached until near expiry."""

    def __init__(self, service: str, settings: KitSettings, http: httpx.AsyncClient) -> None:
        self.client_id = f"svc-{service}"
        self.settings = settings
        self.http = http
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token and time.monotonic() < self._expires - 60:
                return self._token
            response = await self.http.post(
                self.settings.gateway_url.rstrip("/") + "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.settings.service_secret,
                },
            )
            response.raise_for_status()
            body = response.json()
            self._token = str(body["access_token"])
            self._expires = time.monotonic() + float(body.get("expires_in", 300))
            return self._token

    def invalidate(self) -> None:
        self._token = None


# ----------------------------------------------------------------------------- transports


@dataclass
class RelayPolicy:
    max_attempts: int = 12
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 3600.0
    lease_seconds: float = 10.0
    poll_seconds: float = 2.0
    batch_size: int = 100

    def delay(self, attempts: int, cap: float | None = None) -> timedelta:
        """Exponential backoff with full-range jitter in [50%, 100%] of the step."""
        ceiling = self.max_delay_seconds if cap is None else min(cap, self.max_delay_seconds)
        step = min(self.base_delay_seconds * 2 ** max(0, attempts - 1), ceiling)
        return timedelta(seconds=step * random.uniform(0.5, 1.0))  # noqa: S311 - not a secret

    @classmethod
    def from_settings(cls, settings: KitSettings) -> RelayPolicy:
        return cls(
            max_attempts=settings.relay_max_attempts,
            base_delay_seconds=settings.relay_base_delay_seconds,
            max_delay_seconds=settings.relay_max_delay_seconds,
            lease_seconds=settings.relay_lease_seconds,
            poll_seconds=settings.relay_poll_seconds,
            batch_size=settings.relay_batch_size,
        )


@dataclass
class Outcome:
    """What became of one outbox row's delivery attempt."""

    error: str | None = None
    # Can never succeed: dead at once.
    permanent: bool = False
    # Counts towards `max_attempts` (a broker that is down does not: nothing is wrong with
    # the event, and it must not die of an outage).
    counts: bool = True
    # Cap on the retry delay for this failure.
    cap_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class EventTransport:
    """What every transport shares: claiming the outbox, recording outcomes, its loops.
    Subclasses deliver (`_deliver_rows`) and may add loops (`_loops`)."""

    name = "transport"

    def __init__(
        self,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        tokens: ServiceTokens,
        settings: KitSettings,
        policy: RelayPolicy | None = None,
        consumer: EventConsumer | None = None,
    ) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.http = http
        # Also what the service's own workers use to call other services (cases' fetcher).
        self.tokens: Any = tokens
        self.settings = settings
        self.policy = policy or RelayPolicy()
        self.consumer = consumer
        self._lock = asyncio.Lock()
        self._is_postgres = sessionmaker.kw["bind"].dialect.name == "postgresql"
        self.publisher = PeriodicTask(
            f"{self.name}-{bus.service}", self.publish_once, interval=self.policy.poll_seconds
        )
        self.pruner = EventPruner(bus, sessionmaker, settings)
        self._tasks: list[PeriodicTask] = []

    # -- waking

    def wake(self) -> None:
        self.publisher.wake()

    def wake_after_commit(self, session: Session) -> None:
        self.publisher.wake_after_commit(session)

    # -- lifecycle

    def _loops(self) -> list[PeriodicTask]:
        prune = PeriodicTask(
            f"prune-{self.bus.service}",
            self.pruner.run_once,
            interval=self.settings.event_prune_interval_seconds,
        )
        return [self.publisher, prune]

    def start(self) -> None:
        self._tasks = self._loops()
        for task in self._tasks:
            task.start()

    async def stop(self) -> None:
        for task in reversed(self._tasks):
            await task.stop()
        self._tasks = []
        await self.close()

    async def close(self) -> None:
        """Release connections (the broker's)."""

    async def run_once(self) -> int:
        """One pass of everything this transport does (tests drain with it): here, publish
        a batch of due rows; return how many were attempted."""
        return await self.publish_once()

    # -- the outbox

    async def publish_once(self) -> int:
        """Claim and deliver one batch of due rows; return how many were attempted."""
        async with self._lock:
            if not await self._ready():
                return 0
            rows = await self._claim()
            if not rows:
                return 0
            async with self._leased(rows):
                outcomes = await self._deliver_rows(rows)
            await self._record(rows, outcomes)
            return len(rows)

    async def _ready(self) -> bool:
        return True

    async def _deliver_rows(self, rows: list[Any]) -> list[Outcome]:
        raise NotImplementedError

    async def _claim(self) -> list[Any]:
        outbox = self.bus.outbox
        now = self.bus.clock.now()
        earlier = aliased(outbox)
        # Only the oldest pending row of each (destination, subject): events about one thing
        # leave in order, whichever replica claims them.
        head = (
            select(func.min(earlier.seq))
            .where(
                earlier.destination == outbox.destination,
                earlier.subject == outbox.subject,
                earlier.status == PENDING,
            )
            .scalar_subquery()
        )
        statement = (
            select(outbox)
            .where(
                outbox.status == PENDING,
                outbox.next_attempt_at <= now,
                (outbox.locked_until.is_(None)) | (outbox.locked_until < now),
                outbox.seq == head,
            )
            .order_by(outbox.seq)
            .limit(self.policy.batch_size)
        )
        if self._is_postgres:
            statement = statement.with_for_update(skip_locked=True, of=outbox)
        async with self.sessionmaker() as session, session.begin():
            rows = list((await session.scalars(statement)).all())
            if rows:
                await session.execute(
                    update(outbox)
                    .where(outbox.seq.in_([r.seq for r in rows]))
                    .values(locked_until=now + timedelta(seconds=self.policy.lease_seconds))
                )
        return rows

    @contextlib.asynccontextmanager
    async def _leased(self, rows: list[Any]) -> AsyncIterator[None]:
        """Keep the batch's lease alive while it is in flight: short leases, so a relay that
        died gives its rows back within seconds, without a slow batch losing its claim."""
        seqs = [r.seq for r in rows]
        lease = self.policy.lease_seconds

        async def renew() -> None:
            outbox = self.bus.outbox
            while True:
                await asyncio.sleep(lease / 3)
                try:
                    async with self.sessionmaker() as session, session.begin():
                        await session.execute(
                            update(outbox)
                            .where(outbox.seq.in_(seqs), outbox.status == PENDING)
                            .values(locked_until=self.bus.clock.now() + timedelta(seconds=lease))
                        )
                except Exception as error:
                    log.warning("lease renewal failed", extra=failure_summary(error))

        task = asyncio.create_task(renew(), name=f"lease-{self.bus.service}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _record(self, rows: list[Any], outcomes: list[Outcome]) -> None:
        outbox = self.bus.outbox
        now = self.bus.clock.now()
        # Rows that end the same way (in a flood: delivered, first attempt) share one UPDATE.
        groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        for row, outcome in zip(rows, outcomes, strict=True):
            values = self._values_after(row, outcome, now)
            groups.setdefault(tuple(sorted(values.items())), []).append(row.seq)
        async with self.sessionmaker() as session, session.begin():
            for values_key, seqs in groups.items():
                await session.execute(
                    update(outbox).where(outbox.seq.in_(seqs)).values(**dict(values_key))
                )

    def _values_after(self, row: Any, outcome: Outcome, now: datetime) -> dict[str, Any]:
        # A coarse event (see the module docstring) keeps no finer time once delivered.
        coarse_row = _is_coarse(row.time)
        if outcome.ok:
            values: dict[str, Any] = {
                "status": DELIVERED,
                "delivered_at": coarse(now) if coarse_row else now,
                "locked_until": None,
                "attempts": row.attempts + 1,
                "last_error": None,
            }
            if row.sealed_with:  # report content leaves no copy behind
                values["payload"] = None
            if coarse_row:  # retries left failure times behind
                values["next_attempt_at"] = row.time
            return values
        error = outcome.error or "error"
        attempts = row.attempts + 1 if outcome.counts else row.attempts
        dead = outcome.permanent or (outcome.counts and attempts >= self.policy.max_attempts)
        log.warning(
            "event delivery failed",
            extra={
                "event_type": row.type,
                "destination": row.destination,
                "attempts": attempts,
                "dead": dead,
                "permanent": outcome.permanent,
                "error": error[:120],
                COARSE_TIME: coarse_row,
            },
        )
        return {
            "status": DEAD if dead else PENDING,
            "attempts": attempts,
            "locked_until": None,
            "last_error": error[:300],
            "next_attempt_at": now + self.policy.delay(max(attempts, 1), outcome.cap_seconds),
        }


class HttpRelay(EventTransport):
    """The embedded transport: POSTs each destination's share of a batch to
    `{service_url}/{destination}/internal/events/batch` in one request (destinations in
    parallel), one row per subject per batch so order holds. A consumer that answers a
    batch with 404 or 405 (an older version) gets the rows one by one."""

    name = "relay"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._single_only: set[str] = set()

    async def _deliver_rows(self, rows: list[Any]) -> list[Outcome]:
        by_destination: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            by_destination.setdefault(row.destination, []).append(index)
        outcomes: list[Outcome] = [Outcome(error="not attempted")] * len(rows)

        async def deliver(destination: str, indexes: list[int]) -> None:
            share = [rows[i] for i in indexes]
            results = await self._deliver_to(destination, share)
            for i, outcome in zip(indexes, results, strict=True):
                outcomes[i] = outcome

        await asyncio.gather(*(deliver(d, i) for d, i in by_destination.items()))
        return outcomes

    def _url(self, destination: str, path: str) -> str:
        return self.settings.service_url(destination).rstrip("/") + f"/{destination}/{path}"

    async def _post(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        response: httpx.Response | None = None
        for _ in range(2):  # one retry with a fresh token after a 401
            token = await self.tokens.token()
            response = await self.http.post(
                url,
                content=body,
                headers={"content-type": content_type, "authorization": f"Bearer {token}"},
            )
            if response.status_code != 401:
                break
            self.tokens.invalidate()
        assert response is not None
        return response

    async def _deliver_to(self, destination: str, rows: list[Any]) -> list[Outcome]:
        if len(rows) == 1 or destination in self._single_only:
            return [await self._deliver_one(row) for row in rows]
        try:
            body = json.dumps([self.bus.envelope(r) for r in rows], separators=(",", ":"))
            response = await self._post(
                self._url(destination, "internal/events/batch"),
                body.encode(),
                "application/cloudevents-batch+json",
            )
        except httpx.HTTPError as exc:
            return [Outcome(error=type(exc).__name__)] * len(rows)
        except Exception as exc:  # never let one batch stop the relay
            log.warning("event delivery failed", extra=failure_summary(exc))
            return [Outcome(error=type(exc).__name__)] * len(rows)
        if response.status_code in (404, 405):
            self._single_only.add(destination)
            return [await self._deliver_one(row) for row in rows]
        if not response.is_success:
            return [Outcome(error=f"HTTP {response.status_code}")] * len(rows)
        try:
            results = BatchAck.model_validate(response.json()).results
        except (ValueError, ValidationError):
            return [Outcome(error="malformed batch answer")] * len(rows)
        by_id = {result.id: result for result in results}
        outcomes = []
        for row in rows:
            result = by_id.get(str(row.event_id))
            if result is None:
                outcomes.append(Outcome(error="missing from batch answer"))
            elif result.status in ("processed", "duplicate", "ignored"):
                outcomes.append(Outcome())
            else:
                outcomes.append(
                    Outcome(
                        error=result.reason or result.status,
                        permanent=result.status == "rejected",
                    )
                )
        return outcomes

    async def _deliver_one(self, row: Any) -> Outcome:
        try:
            body = json.dumps(self.bus.envelope(row), separators=(",", ":")).encode()
            response = await self._post(
                self._url(row.destination, "internal/events"), body, "application/cloudevents+json"
            )
        except httpx.HTTPError as exc:
            return Outcome(error=type(exc).__name__)
        except Exception as exc:  # never let one row stop the relay
            log.warning("event delivery failed", extra=failure_summary(exc))
            return Outcome(error=type(exc).__name__)
        if response.is_success:
            return Outcome()
        if response.status_code in (400, 422):
            return Outcome(error=_problem_reason(response), permanent=True)
        return Outcome(error=f"HTTP {response.status_code}")


def _problem_reason(response: httpx.Response) -> str:
    """A refused event's reason from the consumer's problem document (written without
    content: a title or detail, and the fields at fault)."""
    reason = f"HTTP {response.status_code}"
    try:
        problem = response.json()
    except ValueError:
        return reason
    if not isinstance(problem, dict):
        return reason
    detail = problem.get("detail") or problem.get("title")
    if isinstance(detail, str):
        reason += f" {detail}"
    fields = problem.get("fields") or [
        e.get("field") for e in problem.get("errors") or [] if isinstance(e, dict)
    ]
    if isinstance(fields, list) and fields:
        reason += " (" + ", ".join(str(f) for f in fields) + ")"
    return reason[:300]


# Kept for code that still names the HTTP transport by its first name.
Relay = HttpRelay


# ----------------------------------------------------------------------------- pruning


class EventPruner:
    """Deletes delivered outbox rows older than `outbox_retention_days` and inbox ids older
    than `inbox_retention_days`, a chunk at a time. Dead and pending rows stay. Safe with
    N replicas: deleting what another replica deleted deletes nothing."""

    chunk = 1000

    def __init__(
        self,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: KitSettings,
    ) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.outbox_retention = timedelta(days=settings.outbox_retention_days)
        self.inbox_retention = timedelta(days=settings.inbox_retention_days)

    async def run_once(self) -> int:
        """Delete one chunk of each; return how many rows went (the loop calls again while
        there are more)."""
        outbox, inbox = self.bus.outbox, self.bus.inbox
        now = self.bus.clock.now()
        async with self.sessionmaker() as session, session.begin():
            old_rows = (
                select(outbox.seq)
                .where(
                    outbox.status == DELIVERED,
                    outbox.delivered_at < now - self.outbox_retention,
                )
                .limit(self.chunk)
            )
            old_ids = (
                select(inbox.event_id)
                .where(inbox.received_at < now - self.inbox_retention)
                .limit(self.chunk)
            )
            seqs = list((await session.scalars(old_rows)).all())
            ids = list((await session.scalars(old_ids)).all())
            if seqs:
                await session.execute(delete(outbox).where(outbox.seq.in_(seqs)))
            if ids:
                await session.execute(delete(inbox).where(inbox.event_id.in_(ids)))
        return len(seqs) + len(ids)


# ----------------------------------------------------------------------------- HTTP consumer


class DeliveryAck(BaseModel):
    status: Literal["processed", "duplicate", "ignored"]


class BatchResult(BaseModel):
    id: str
    # `rejected`: can never succeed (dead at once); `failed`: try again later.
    status: Literal["processed", "duplicate", "ignored", "rejected", "failed"]
    reason: str | None = None


class BatchAck(BaseModel):
    results: list[BatchResult]


def event_router(service: str) -> APIRouter:
    """`POST /{service}/internal/events` (one event) and `.../internal/events/batch` (a JSON
    array, CloudEvents batch mode): idempotent consumption over the HTTP transport."""
    router = APIRouter(route_class=CommittingRoute, tags=["internal"])

    @router.post(
        f"/{service}/internal/events",
        operation_id=f"{service}_receive_event",
        response_model=DeliveryAck,
        include_in_schema=False,
    )
    async def receive_event(
        cloud_event: CloudEvent,
        request: Request,
        # Before the caller check, so a refused delivery of a coarse event is logged coarse.
        _timing: None = Depends(_coarse_delivery),
        _caller: Principal = Depends(service_caller),
    ) -> DeliveryAck:
        consumer: EventConsumer = request.app.state.event_consumer
        try:
            _ = cloud_event.event_id
        except ValueError:
            raise BadRequest("The event's id is not a UUID.", fields=["id"]) from None
        try:
            status = await consumer.handle(cloud_event)
        except ValidationError as error:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
            raise BadRequest(f"Malformed {cloud_event.type} data.", fields=fields) from None
        return DeliveryAck(status=status)

    @router.post(
        f"/{service}/internal/events/batch",
        operation_id=f"{service}_receive_event_batch",
        response_model=BatchAck,
        include_in_schema=False,
    )
    async def receive_event_batch(
        request: Request,
        events: list[dict[str, Any]] = Body(max_length=1000),
        _timing: None = Depends(_coarse_delivery),
        _caller: Principal = Depends(service_caller),
    ) -> BatchAck:
        consumer: EventConsumer = request.app.state.event_consumer
        parsed: list[CloudEvent | BatchResult] = []
        for index, item in enumerate(events):
            try:
                event = CloudEvent.model_validate(item)
                _ = event.event_id
                parsed.append(event)
            except ValueError as error:
                raw_id = item.get("id")
                parsed.append(
                    BatchResult(
                        id=raw_id if isinstance(raw_id, str) else f"#{index}",
                        status="rejected",
                        reason=failure_reason(error)
                        if isinstance(error, ValidationError)
                        else "malformed event id",
                    )
                )
        runnable = [entry for entry in parsed if not isinstance(entry, BatchResult)]
        outcomes = iter(await consumer.handle_all(runnable))
        results = []
        for entry in parsed:
            if isinstance(entry, BatchResult):
                results.append(entry)
                continue
            outcome = next(outcomes)
            if not isinstance(outcome, Exception):
                results.append(BatchResult(id=entry.id, status=outcome))
                continue
            permanent = is_permanent(outcome)
            if not permanent:
                log.warning(
                    "event handler failed",
                    extra={"event_type": entry.type, **failure_summary(outcome)},
                )
            results.append(
                BatchResult(
                    id=entry.id,
                    status="rejected" if permanent else "failed",
                    reason=failure_reason(outcome),
                )
            )
        return BatchAck(results=results)

    return router


async def _coarse_delivery(request: Request) -> None:
    """The delivery of a coarse event (its `time` on the hour: see the module) is served
    coarse from the start: its log lines, refusals included, show the hour only. One coarse
    event makes a whole batch coarse."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return  # the body's own validation answers for it
    for item in body if isinstance(body, list) else [body]:
        try:
            moment = datetime.fromisoformat(str(item.get("time")))
        except (ValueError, TypeError, AttributeError):
            continue
        if _is_coarse(moment):
            keep_time_coarse()
            return


# ----------------------------------------------------------------------------- dead letters


class OutboxEntry(BaseModel):
    """An outbox row as an operator sees it: no subject (a case's id would tell an admin who
    sits above its respondent that the case exists) and no data."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    event_id: uuid.UUID
    destination: str
    type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


class OutboxPage(BaseModel):
    items: list[OutboxEntry]


def outbox_admin_router(service: str) -> APIRouter:
    """Admins see their org's undelivered events and requeue dead ones."""
    # Every status these routes answer, as problem+json: 422 from the parameters' validation
    # (which FastAPI would otherwise document as its own non-problem schema), and on the POST
    # what the kit's middleware answers for any write (body guard, Idempotency-Key).
    router = APIRouter(
        prefix=f"/{service}/v1/admin/outbox",
        tags=["operations"],
        route_class=CommittingRoute,
        responses=problem_responses(401, 403, 422, 500),
    )

    @router.get(
        "",
        operation_id=f"{service}_list_outbox",
        dependencies=[require_scope(Scope.EVENTS_MANAGE)],
        summary="List undelivered events",
        description=(
            "Admins only: your organisation's events this service has not delivered yet "
            "(`pending`) or has given up on (`dead`), oldest first."
        ),
        response_model=OutboxPage,
    )
    async def list_outbox(
        request: Request,
        status: Literal["pending", "dead"] = Query("dead", description="Which events."),
        limit: int = Query(50, ge=1, le=200, description="At most this many."),
        principal: Principal = require_roles("admin"),
        session: AsyncSession = Depends(get_session),
    ) -> OutboxPage:
        outbox = request.app.state.events.outbox
        rows = await session.scalars(
            select(outbox)
            .where(outbox.status == status, outbox.org_id == principal.org_id)
            .order_by(outbox.seq)
            .limit(limit)
        )
        return OutboxPage(items=[OutboxEntry.model_validate(r) for r in rows])

    @router.post(
        "/{seq}/requeue",
        operation_id=f"{service}_requeue_outbox",
        dependencies=[require_scope(Scope.EVENTS_MANAGE)],
        summary="Requeue a dead event",
        description=(
            "Admins only: deliver a dead event of your organisation again, from its first "
            "attempt. Another organisation's event, or one that is not dead, is 404."
        ),
        response_model=OutboxEntry,
        responses=problem_responses(400, 404, 409, 413, 415),
    )
    async def requeue(
        request: Request,
        seq: int = Path(ge=1, le=2**63 - 1, description="The event's `seq`."),
        principal: Principal = require_roles("admin"),
        session: AsyncSession = Depends(get_session),
    ) -> OutboxEntry:
        bus: EventBus = request.app.state.events
        row = await session.get(bus.outbox, seq)
        if row is None or row.org_id != principal.org_id or row.status != DEAD:
            raise NotFound("No dead event with that number.")
        row.status, row.attempts, row.next_attempt_at = PENDING, 0, bus.clock.now()
        row.last_error = None
        await session.flush()
        if bus.transport is not None:
            bus.transport.wake_after_commit(session.sync_session)
        return OutboxEntry.model_validate(row)

    return router


# ----------------------------------------------------------------------------- wiring


def install_events(
    app: FastAPI,
    service: str,
    outbox: type[OutboxMixin],
    inbox: type[InboxMixin],
    handlers: Mapping[str, Handler] | None = None,
    subscriptions: Sequence[Subscription] | None = None,
) -> None:
    """Add the consumer and admin routes now; build the transport with the app
    (`start_events`) and start its loops once the app's own startup is done
    (`start_event_delivery`)."""
    app.include_router(event_router(service))
    app.include_router(outbox_admin_router(service))
    app.state.event_tables = (outbox, inbox)
    app.state.event_consumer = EventConsumer(service, app, handlers or {}, subscriptions)


async def start_events(app: FastAPI) -> None:
    """The bus and the transport, before the service's startup hooks (which publish, and
    reuse the transport's service tokens)."""
    settings: KitSettings = app.state.settings
    outbox, inbox = app.state.event_tables
    bus = EventBus(
        app.state.service_name,
        outbox,
        inbox,
        Keyring.from_settings(settings),
        app.state.clock,
        broker=settings.event_transport == "nats",
    )
    app.state.events = bus
    tokens = ServiceTokens(app.state.service_name, settings, app.state.http)
    policy = RelayPolicy.from_settings(settings)
    consumer: EventConsumer = app.state.event_consumer
    transport: EventTransport
    if settings.event_transport == "nats":
        from upstander.kit.jetstream import NatsTransport  # only where NATS is chosen

        transport = NatsTransport(
            bus, app.state.sessionmaker, app.state.http, tokens, settings, policy, consumer
        )
    else:
        transport = HttpRelay(
            bus, app.state.sessionmaker, app.state.http, tokens, settings, policy, consumer
        )
    bus.transport = transport
    app.state.relay = transport


async def start_event_delivery(app: FastAPI) -> None:
    """Start the transport's loops, after the startup hooks made what handlers use."""
    transport: EventTransport | None = getattr(app.state, "relay", None)
    if transport is not None and app.state.settings.relay_background:
        transport.start()


async def stop_events(app: FastAPI) -> None:
    transport: EventTransport | None = getattr(app.state, "relay", None)
    if transport is not None:
        await transport.stop()
