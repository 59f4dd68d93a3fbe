"""Delivering queued webhook messages: sign, POST, record, and retry on the Standard Webhooks
schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), then dead letter."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.notify.models import DeliveryStatus, Webhook, WebhookDelivery
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
LEASE = timedelta(seconds=120)


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


class WebhookDispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        *,
        timeout: float,
        app_base_url: str,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.http = http
        self.timeout = timeout
        self.app_base_url = app_base_url
        self._is_postgres = sessionmaker.kw["bind"].dialect.name == "postgresql"

    async def run_once(self, now: datetime, limit: int = 50) -> int:
        """Attempt one batch of due deliveries; returns how many were attempted."""
        claimed = await self._claim(now, limit)
        for delivery_id in claimed:
            await self._attempt(delivery_id, now)
        return len(claimed)

    async def _claim(self, now: datetime, limit: int) -> list[uuid.UUID]:
        statement = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
            .limit(limit)
        )
        if self._is_postgres:
            statement = statement.with_for_update(skip_locked=True)
        async with self.sessionmaker() as session, session.begin():
            ids = list((await session.scalars(statement)).all())
            if ids:
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(ids))
                    .values(locked_until=now + LEASE)
                )
        return ids

    async def _attempt(self, delivery_id: uuid.UUID, now: datetime) -> None:
        async with self.sessionmaker() as session, session.begin():
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None:
                return
            await self._try(session, delivery, now)
            await mirror_delivery(session, delivery, now)

    async def _try(self, session: AsyncSession, delivery: WebhookDelivery, now: datetime) -> None:
        webhook = await session.get(Webhook, delivery.webhook_id)
        delivery.locked_until = None
        delivery.updated_at = now
        if webhook is None or not webhook.active or webhook.org_id != delivery.org_id:
            delivery.status = DeliveryStatus.DEAD
            delivery.error = "endpoint disabled"
            delivery.next_attempt_at = None
            return
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "Upstander-Webhooks/1",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                delivery.message_id, timestamp, body, valid_secrets(webhook, now)
            ),
        }
        delivery.attempts += 1
        delivery.last_attempt_at = now
        started = time.monotonic()
        response: httpx.Response | None = None
        try:
            response = await self.http.post(
                webhook.url,
                content=body,
                headers=headers,
                timeout=self.timeout,
                follow_redirects=False,
            )
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            # A refused target says only that (the log must not map internal ports).
            error = TARGET_REFUSED if is_refusal(exc) else type(exc).__name__
        delivery.latency_ms = int((time.monotonic() - started) * 1000)
        delivery.response_code = response.status_code if response is not None else None
        if error is None:
            delivery.status = DeliveryStatus.SENT
            delivery.delivered_at = now
            delivery.error = None
            delivery.next_attempt_at = None
            webhook.failure_since = None
            return
        delivery.error = error[:300]
        log.warning(
            "webhook delivery failed",
            extra={
                "webhook_id": str(webhook.id),
                "delivery_id": str(delivery.id),
                "attempts": delivery.attempts,
                "error": delivery.error,
            },
        )
        if response is not None and response.status_code == 410:
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
            delay = SCHEDULE[delivery.attempts]
            if response is not None and response.status_code in THROTTLED:
                delay = retry_after(response, now) or delay
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = now + delay
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
