"""The event backbone: a transactional outbox, a relay that delivers it over HTTP, and an inbox
that makes consumers idempotent.

- `publish()` writes one outbox row per subscribing service in the caller's transaction, so an
  event exists if and only if the change that caused it committed.
- `Relay` delivers due rows (oldest first, one at a time per destination and subject, so
  events about one thing arrive in order), retries with exponential backoff and jitter, and
  marks a row dead after `relay_max_attempts`. It wakes as soon as a publishing transaction
  commits and polls as a fallback. Rows are claimed with a lease (`locked_until`), taken with
  `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several replicas share the work safely.
- `event_router()` serves `POST /{service}/internal/events`: it records each event id in the
  inbox in the same transaction as the handler's effect, and acknowledges repeats without
  running the handler again (at-least-once delivery, exactly-once effect).
- Payloads of sensitive types (report content) are sealed with the deployment's key in the
  outbox and erased once delivered.
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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    event,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column

from upstander.kit.auth import Principal, require_roles, service_caller
from upstander.kit.catalogue import SENSITIVE_TYPES, subscribers
from upstander.kit.clock import Clock, coarse, is_coarse
from upstander.kit.crypto import Keyring
from upstander.kit.db import CommittingRoute, UTCDateTime, get_session
from upstander.kit.errors import NotFound, problem_responses
from upstander.kit.observability import COARSE_TIME, keep_time_coarse
from upstander.kit.settings import KitSettings

log = logging.getLogger("upstander.events")

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


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
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
    orgid: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def org_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.orgid) if self.orgid else None


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
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.inbox = inbox
        self.keyring = keyring
        self.clock = clock
        self.relay: Relay | None = None

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
        """Write the event for each subscriber in the session's transaction; wake the relay
        once that transaction commits. `at` (default: now) is the event's `time` and every
        time its rows hold: pass an hour-coarse one for an anonymous reporter's action."""
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
        for destination in subscribers(type):
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
        if self.relay is not None:
            self.relay.wake_after_commit(session)
        return event_id

    def envelope(self, row: OutboxMixin) -> dict[str, Any]:
        payload = row.payload or b"{}"
        if row.sealed_with:
            payload = self.keyring.unwrap(
                row.sealed_with, payload, _aad(row.event_id, row.destination)
            )
        return {
            "specversion": "1.0",
            "id": str(row.event_id),
            "source": row.source,
            "type": row.type,
            "subject": row.subject,
            "time": row.time.isoformat(),
            "datacontenttype": "application/json",
            "orgid": str(row.org_id) if row.org_id else None,
            "data": json.loads(payload),
        }


def _is_coarse(moment: datetime) -> bool:
    """An event time on the hour: published for an anonymous reporter (see the module)."""
    return moment.tzinfo is not None and is_coarse(moment)


def _aad(event_id: uuid.UUID, destination: str) -> bytes:
    return b"outbox:" + event_id.bytes + destination.encode()


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


# ----------------------------------------------------------------------------- relay


@dataclass
class RelayPolicy:
    max_attempts: int = 12
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 3600.0
    lease_seconds: float = 60.0
    poll_seconds: float = 2.0
    batch_size: int = 100

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff with full-range jitter in [50%, 100%] of the step."""
        step = min(self.base_delay_seconds * 2 ** max(0, attempts - 1), self.max_delay_seconds)
        return timedelta(seconds=step * random.uniform(0.5, 1.0))  # noqa: S311 - not a secret


class Relay:
    """Delivers the outbox. `run_once()` is also what tests call to drain it deterministically."""

    def __init__(
        self,
        bus: EventBus,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        tokens: ServiceTokens,
        settings: KitSettings,
        policy: RelayPolicy | None = None,
    ) -> None:
        self.bus = bus
        self.sessionmaker = sessionmaker
        self.http = http
        self.tokens = tokens
        self.settings = settings
        self.policy = policy or RelayPolicy()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._is_postgres = False

    def wake(self) -> None:
        self._wake.set()

    def on_commit(self, _session: Session) -> None:
        self._wake.set()

    def wake_after_commit(self, session: Session) -> None:
        """Wake the relay when `session` commits. Registered once per session (a `once=True`
        wrapper would defeat the `contains` check and pile up a listener per event)."""
        if not event.contains(session, "after_commit", self.on_commit):
            event.listen(session, "after_commit", self.on_commit)

    def start(self) -> None:
        self._is_postgres = self.sessionmaker.kw["bind"].dialect.name == "postgresql"
        self._task = asyncio.create_task(self._loop(), name=f"relay-{self.bus.service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relay pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.policy.poll_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim and deliver one batch of due rows; return how many were attempted."""
        async with self._lock:
            rows = await self._claim()
            for row in rows:
                await self._deliver(row)
            return len(rows)

    async def _claim(self) -> list[Any]:
        outbox = self.bus.outbox
        now = self.bus.clock.now()
        earlier = aliased(outbox)
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

    async def _deliver(self, row: Any) -> None:
        url = (
            self.settings.service_url(row.destination).rstrip("/")
            + f"/{row.destination}/internal/events"
        )
        error: str | None = None
        try:
            body = json.dumps(self.bus.envelope(row), separators=(",", ":")).encode()
            for _ in range(2):  # one retry with a fresh token after a 401
                token = await self.tokens.token()
                response = await self.http.post(
                    url,
                    content=body,
                    headers={
                        "content-type": "application/cloudevents+json",
                        "authorization": f"Bearer {token}",
                    },
                )
                if response.status_code != 401:
                    break
                self.tokens.invalidate()
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        except Exception as exc:  # never let one row stop the relay
            log.exception("event delivery failed")
            error = type(exc).__name__
        await self._record(row, error)

    async def _record(self, row: Any, error: str | None) -> None:
        outbox = self.bus.outbox
        now = self.bus.clock.now()
        # A coarse event (see the module docstring) keeps no finer time once delivered.
        coarse_row = _is_coarse(row.time)
        if error is None:
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
        else:
            attempts = row.attempts + 1
            dead = attempts >= self.policy.max_attempts
            values = {
                "status": DEAD if dead else PENDING,
                "attempts": attempts,
                "locked_until": None,
                "last_error": error[:300],
                "next_attempt_at": now + self.policy.delay(attempts),
            }
            log.warning(
                "event delivery failed",
                extra={
                    "event_type": row.type,
                    "destination": row.destination,
                    "attempts": attempts,
                    "dead": dead,
                    "error": error,
                    COARSE_TIME: coarse_row,
                },
            )
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(outbox).where(outbox.seq == row.seq).values(**values))


# ----------------------------------------------------------------------------- consuming

Handler = Callable[[AsyncSession, CloudEvent, Request], Awaitable[None]]


class DeliveryAck(BaseModel):
    status: Literal["processed", "duplicate", "ignored"]


def event_router(service: str, handlers: Mapping[str, Handler]) -> APIRouter:
    """`POST /{service}/internal/events`: idempotent consumption of the platform's events."""
    router = APIRouter(route_class=CommittingRoute, tags=["internal"])

    def handler_for(event_type: str) -> Handler | None:
        if event_type in handlers:
            return handlers[event_type]
        for pattern, handler in handlers.items():
            if fnmatchcase(event_type, pattern):
                return handler
        return None

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
        session: AsyncSession = Depends(get_session),
    ) -> DeliveryAck:
        bus: EventBus = request.app.state.events
        event_id = uuid.UUID(cloud_event.id)
        coarse_event = _is_coarse(cloud_event.time)
        if await session.get(bus.inbox, event_id) is not None:
            return DeliveryAck(status="duplicate")
        handler = handler_for(cloud_event.type)
        if handler is not None:
            await handler(session, cloud_event, request)
        session.add(
            bus.inbox(
                event_id=event_id,
                type=cloud_event.type,
                source=cloud_event.source[:64],
                received_at=coarse(bus.clock.now()) if coarse_event else bus.clock.now(),
            )
        )
        await session.flush()
        return DeliveryAck(status="processed" if handler else "ignored")

    return router


async def _coarse_delivery(request: Request) -> None:
    """The delivery of a coarse event (its `time` on the hour: see the module) is served
    coarse from the start: its log lines, refusals included, show the hour only."""
    try:
        moment = datetime.fromisoformat(str(json.loads(await request.body()).get("time")))
    except (ValueError, TypeError, AttributeError):
        return  # the body's own validation answers for it
    if _is_coarse(moment):
        keep_time_coarse()


# ----------------------------------------------------------------------------- dead letters


class OutboxEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    event_id: uuid.UUID
    destination: str
    type: str
    subject: str
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
        if bus.relay is not None:
            bus.relay.wake_after_commit(session.sync_session)
        return OutboxEntry.model_validate(row)

    return router


# ----------------------------------------------------------------------------- wiring


def install_events(
    app: FastAPI,
    service: str,
    outbox: type[OutboxMixin],
    inbox: type[InboxMixin],
    handlers: Mapping[str, Handler] | None = None,
) -> None:
    """Add the consumer and admin routes now; start the relay with the app (`start_events`)."""
    app.include_router(event_router(service, handlers or {}))
    app.include_router(outbox_admin_router(service))
    app.state.event_tables = (outbox, inbox)


async def start_events(app: FastAPI) -> None:
    settings: KitSettings = app.state.settings
    outbox, inbox = app.state.event_tables
    bus = EventBus(
        app.state.service_name, outbox, inbox, Keyring.from_settings(settings), app.state.clock
    )
    tokens = ServiceTokens(app.state.service_name, settings, app.state.http)
    policy = RelayPolicy(
        max_attempts=settings.relay_max_attempts,
        base_delay_seconds=settings.relay_base_delay_seconds,
        max_delay_seconds=settings.relay_max_delay_seconds,
        poll_seconds=settings.relay_poll_seconds,
    )
    relay = Relay(bus, app.state.sessionmaker, app.state.http, tokens, settings, policy)
    bus.relay = relay
    app.state.events = bus
    app.state.relay = relay
    if settings.relay_background:
        relay.start()


async def stop_events(app: FastAPI) -> None:
    relay: Relay | None = getattr(app.state, "relay", None)
    if relay is not None:
        await relay.stop()
