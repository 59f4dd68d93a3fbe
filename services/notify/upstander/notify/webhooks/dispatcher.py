"""Delivering queued webhook messages: sign, POST, record, and retry on the Standard Webhooks
schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), then dead letter.

Attempts run concurrently: up to `concurrency` at once in this process and at most
`per_endpoint` at once for one endpoint (counted from the leases in the database, so across
processes too). A delivery whose endpoint is at its limit is not claimed: it stays due and
goes out when one of that endpoint's attempts ends, while other endpoints' deliveries go on,
so a slow receiver only ever holds its own slots.

Each attempt is signed with the clock read just before its request leaves (receivers refuse
timestamps more than 5 minutes off), and each leaves a row in the attempts log. No database
transaction is open while a request is in flight: the delivery is read in one short
transaction and the outcome recorded in another, guarded by the claim's lease."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.kit.clock import Clock
from upstander.notify.models import (
    ERROR_MAX,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from upstander.notify.webhooks.service import disable_webhook, mirror_delivery, valid_secrets
from upstander.notify.webhooks.signing import signature_header
from upstander.notify.webhooks.targets import TARGET_REFUSED, is_refusal

log = logging.getLogger("upstander.notify.webhooks")

# Delay before attempt n+1 (index n): the first attempt is at once.
SCHEDULE = tuple(
    timedelta(seconds=s) for s in (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
)
MAX_ATTEMPTS = len(SCHEDULE)
THROTTLED = frozenset({429, 502, 504})
MAX_RETRY_AFTER = timedelta(hours=24)
FAILING_FOR = timedelta(days=5)
# A claim outlives its request's timeout by this much; a crashed process's claims come back
# when it runs out (seconds, not minutes).
LEASE_MARGIN = timedelta(seconds=15)
# Due rows read per free slot when claiming: endpoints at their limit are filtered in SQL,
# the rest of the per-endpoint limit here.
CANDIDATES_PER_SLOT = 4
# PostgreSQL advisory lock taken by each claim, so two processes never count the same
# endpoint's slots at once (the bigint is "upstWebh" in ASCII).
CLAIM_LOCK = 0x7570737457656268
CLAIM_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:key)")
ACTIVE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


def retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date, bounded to 1 s .. 24 h."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        delay = timedelta(seconds=float(value))
    except ValueError:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(timedelta(seconds=1), min(delay, MAX_RETRY_AFTER))


@dataclass(frozen=True)
class Claim:
    """A delivery this process may attempt until `lease_until` (its `locked_until`)."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    lease_until: datetime


@dataclass(frozen=True)
class _Request:
    url: str
    body: bytes
    message_id: str
    secrets: list[str]


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: `error` is None for a 2xx."""

    attempted_at: datetime
    response_code: int | None
    latency_ms: int
    error: str | None
    retry_delay: timedelta | None


class WebhookDispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        *,
        clock: Clock,
        timeout: float,
        app_base_url: str,
        concurrency: int = 32,
        per_endpoint: int = 2,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        # The SSRF-guarded client (webhooks/targets.py): no redirects, no proxy.
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.app_base_url = app_base_url
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        # Called when an attempt ends (a slot is free): the worker claims more.
        self.on_finish = on_finish
        self.lease = timedelta(seconds=timeout) + LEASE_MARGIN
        self._is_postgres = sessionmaker.kw["bind"].dialect.name == "postgresql"
        self._running: set[asyncio.Task[None]] = set()
        self._claiming = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def dispatch(self, due_by: datetime | None = None) -> list[asyncio.Task[None]]:
        """Claim deliveries due by `due_by` (default: now) for the free slots and start their
        attempts; returns the started tasks without waiting for them."""
        async with self._claiming:
            free = self.concurrency - len(self._running)
            if free <= 0:
                return []
            claims = await self._claim(free, due_by)
            tasks = []
            for claim in claims:
                task = asyncio.create_task(self._deliver(claim), name="webhook-delivery")
                self._running.add(task)
                task.add_done_callback(self._finished)
                tasks.append(task)
            return tasks

    async def run_once(self) -> int:
        """Attempt everything due now, each delivery once, within the same limits as the
        worker's loop (an endpoint at its limit waits for one of its attempts to end while
        the others go on); returns how many attempts there were. Tests drive delivery this
        way; the worker's loop uses `dispatch`."""
        # Due by the pass's start: a retry scheduled during the pass waits for the next one.
        due_by = self.clock.now()
        attempted = 0
        waiting: set[asyncio.Task[None]] = set()
        while True:
            started = await self.dispatch(due_by)
            attempted += len(started)
            waiting.update(started)
            if not waiting:
                return attempted
            _, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        """Abandon attempts in flight: their leases run out and they are tried again."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self.on_finish is not None:
            self.on_finish()

    async def _claim(self, free: int, due_by: datetime | None) -> list[Claim]:
        now = self.clock.now()
        lease_until = now + self.lease
        # Attempts in flight anywhere: their leases (cleared when an attempt is recorded).
        in_flight = (WebhookDelivery.status.in_(ACTIVE), WebhookDelivery.locked_until > now)
        async with self.sessionmaker() as session, session.begin():
            if self._is_postgres:
                await session.execute(CLAIM_LOCK_SQL, {"key": CLAIM_LOCK})
            busy: Counter[uuid.UUID] = Counter()
            for webhook_id, count in await session.execute(
                select(WebhookDelivery.webhook_id, func.count())
                .where(*in_flight)
                .group_by(WebhookDelivery.webhook_id)
            ):
                busy[webhook_id] = int(count)
            full = [w for w, n in busy.items() if n >= self.per_endpoint]
            statement = select(WebhookDelivery.id, WebhookDelivery.webhook_id).where(
                WebhookDelivery.status.in_(ACTIVE),
                WebhookDelivery.next_attempt_at <= (due_by or now),
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until <= now),
            )
            if full:
                statement = statement.where(WebhookDelivery.webhook_id.not_in(full))
            statement = statement.order_by(
                WebhookDelivery.next_attempt_at, WebhookDelivery.created_at
            ).limit(free * CANDIDATES_PER_SLOT)
            if self._is_postgres:
                statement = statement.with_for_update(skip_locked=True)
            picked: list[Claim] = []
            for delivery_id, webhook_id in await session.execute(statement):
                if busy[webhook_id] >= self.per_endpoint:
                    continue  # it waits for one of its endpoint's attempts to end
                busy[webhook_id] += 1
                picked.append(Claim(delivery_id, webhook_id, lease_until))
                if len(picked) >= free:
                    break
            if picked:
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_([c.delivery_id for c in picked]))
                    .values(locked_until=lease_until)
                    .execution_options(synchronize_session=False)
                )
        return picked

    async def _deliver(self, claim: Claim) -> None:
        try:
            request = await self._prepare(claim)
            if request is None:
                return
            outcome = await self._send(request)
            await self._record(claim, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the delivery is tried again.
            log.exception(
                "webhook delivery attempt not recorded",
                extra={"delivery_id": str(claim.delivery_id)},
            )

    async def _prepare(self, claim: Claim) -> _Request | None:
        """What to send, read in a short transaction; None when there is nothing to send (the
        claim was lost, or the endpoint is gone or switched off: then a dead letter)."""
        async with self.sessionmaker() as session, session.begin():
            now = self.clock.now()
            delivery = await session.get(WebhookDelivery, claim.delivery_id)
            if delivery is None or delivery.locked_until != claim.lease_until:
                return None
            webhook = await session.get(Webhook, delivery.webhook_id)
            if webhook is None or not webhook.active or webhook.org_id != delivery.org_id:
                delivery.status = DeliveryStatus.DEAD
                delivery.error = "endpoint disabled"
                delivery.next_attempt_at = None
                delivery.locked_until = None
                delivery.updated_at = now
                await session.flush()
                await mirror_delivery(session, delivery, now)
                return None
            return _Request(
                url=webhook.url,
                body=json.dumps(delivery.payload, separators=(",", ":")).encode(),
                message_id=delivery.message_id,
                secrets=valid_secrets(webhook, now),
            )

    async def _send(self, request: _Request) -> Outcome:
        # The signature's time is this attempt's, read as the request leaves.
        attempted_at = self.clock.now()
        timestamp = int(attempted_at.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "Upstander-Webhooks/1",
            "webhook-id": request.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                request.message_id, timestamp, request.body, request.secrets
            ),
        }
        started = time.monotonic()
        response: httpx.Response | None = None
        try:
            response = await self.http.post(
                request.url,
                content=request.body,
                headers=headers,
                timeout=self.timeout,
                follow_redirects=False,
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            # A refused target says only that (the log must not map internal ports).
            error = TARGET_REFUSED if is_refusal(exc) else type(exc).__name__
        latency_ms = int((time.monotonic() - started) * 1000)
        retry_delay = None
        if response is not None and response.status_code in THROTTLED:
            retry_delay = retry_after(response, self.clock.now())
        return Outcome(
            attempted_at=attempted_at,
            response_code=response.status_code if response is not None else None,
            latency_ms=latency_ms,
            error=error[:ERROR_MAX] if error is not None else None,
            retry_delay=retry_delay,
        )

    async def _record(self, claim: Claim, outcome: Outcome) -> None:
        """Log the attempt and, while the claim still holds, move the delivery on."""
        async with self.sessionmaker() as session, session.begin():
            now = self.clock.now()
            # Endpoint first, then delivery: the order disabling an endpoint takes them in.
            lock = self._is_postgres
            webhook = await session.get(Webhook, claim.webhook_id, with_for_update=lock)
            delivery = await session.get(WebhookDelivery, claim.delivery_id, with_for_update=lock)
            if delivery is None:
                return  # withdrawn or deleted with its endpoint while in flight
            last = await session.scalar(
                select(func.max(WebhookDeliveryAttempt.number)).where(
                    WebhookDeliveryAttempt.delivery_id == delivery.id
                )
            )
            session.add(
                WebhookDeliveryAttempt(
                    org_id=delivery.org_id,
                    delivery_id=delivery.id,
                    number=(last or 0) + 1,
                    attempted_at=outcome.attempted_at,
                    response_code=outcome.response_code,
                    latency_ms=outcome.latency_ms,
                    error=outcome.error,
                    created_at=now,
                    updated_at=now,
                )
            )
            if delivery.locked_until != claim.lease_until:
                # Replayed (or claimed again after the lease ran out) while in flight: the
                # newer claim owns the delivery's state.
                await session.flush()
                return
            await self._apply(session, delivery, webhook, outcome, now)
            await session.flush()
            await mirror_delivery(session, delivery, now)

    async def _apply(
        self,
        session: AsyncSession,
        delivery: WebhookDelivery,
        webhook: Webhook | None,
        outcome: Outcome,
        now: datetime,
    ) -> None:
        delivery.locked_until = None
        delivery.updated_at = now
        delivery.attempts += 1
        delivery.last_attempt_at = outcome.attempted_at
        delivery.latency_ms = outcome.latency_ms
        delivery.response_code = outcome.response_code
        if outcome.error is None:
            delivery.status = DeliveryStatus.SENT
            delivery.delivered_at = now
            delivery.error = None
            delivery.next_attempt_at = None
            if webhook is not None:
                webhook.failure_since = None
            return
        delivery.error = outcome.error
        log.warning(
            "webhook delivery failed",
            extra={
                "webhook_id": str(delivery.webhook_id),
                "delivery_id": str(delivery.id),
                "attempts": delivery.attempts,
                "error": delivery.error,
            },
        )
        if webhook is None or not webhook.active or webhook.org_id != delivery.org_id:
            # Switched off (or gone) while the request was in flight.
            delivery.status = DeliveryStatus.DEAD
            delivery.error = "endpoint disabled"
            delivery.next_attempt_at = None
            return
        if outcome.response_code == 410:
            delivery.status = DeliveryStatus.DEAD
            delivery.next_attempt_at = None
            await disable_webhook(
                session,
                webhook,
                "the endpoint answered 410 Gone",
                app_base_url=self.app_base_url,
                now=now,
            )
            return
        if webhook.failure_since is None:
            webhook.failure_since = now
        if delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.DEAD
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = now + (outcome.retry_delay or SCHEDULE[delivery.attempts])
        if now - webhook.failure_since > FAILING_FOR:
            delivery.status = DeliveryStatus.DEAD
            delivery.next_attempt_at = None
            await disable_webhook(
                session,
                webhook,
                "the endpoint has failed for more than 5 days",
                app_base_url=self.app_base_url,
                now=now,
            )
