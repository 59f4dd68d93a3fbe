"""Webhook endpoints of an org, and the deliveries queued for them. No FastAPI here."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.crypto import Vault
from upstander.kit.errors import BadRequest, NotFound
from upstander.kit.events import CloudEvent
from upstander.kit.pagination import PageParams, paginate
from upstander.notify.directory.service import people_with_role
from upstander.notify.inbox.service import deliver_inbox_message
from upstander.notify.mail.templates import render
from upstander.notify.models import Channel, Delivery, DeliveryStatus, Webhook, WebhookDelivery
from upstander.notify.webhooks.signing import new_secret
from upstander.notify.webhooks.targets import TargetPolicy, check_registration

ROTATION_GRACE = timedelta(hours=24)
FORWARDED_PREFIXES = ("upstander.case.", "upstander.training.", "upstander.policy.")
# Data keys that may leave the platform: identifiers and states, never content or people
# lists (`restricted_person_ids` would say who is involved in a case).
_SCALAR_KEYS = frozenset({"number", "status", "version", "author", "state"})


def thin_data(data: dict[str, Any]) -> dict[str, Any]:
    """Identifiers (`*_id`) and a few non-personal scalars; everything else is dropped."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        if (key.endswith("_id") or key in _SCALAR_KEYS) and len(str(value)) <= 128:
            out[key] = value
    return out


async def _check_url(url: str, *, allow_http: bool, policy: TargetPolicy) -> str:
    if not allow_http and not url.startswith("https://"):
        raise BadRequest("Webhook URLs must use https.")
    return await check_registration(url, policy)


async def get_webhook(session: AsyncSession, org_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
    webhook = await session.scalar(
        select(Webhook).where(Webhook.id == webhook_id, Webhook.org_id == org_id)
    )
    if webhook is None:
        raise NotFound("No such webhook.")
    return webhook


async def list_webhooks(
    session: AsyncSession, org_id: uuid.UUID, params: PageParams
) -> tuple[list[Webhook], str | None]:
    return await paginate(session, select(Webhook).where(Webhook.org_id == org_id), Webhook, params)


async def create_webhook(
    session: AsyncSession,
    vault: Vault,
    org_id: uuid.UUID,
    *,
    url: str,
    event_types: list[str],
    description: str,
    allow_http: bool,
    policy: TargetPolicy,
    now: datetime,
) -> tuple[Webhook, str]:
    """Create an endpoint with a fresh secret; returns the secret, which is never shown again."""
    url = await _check_url(url, allow_http=allow_http, policy=policy)
    webhook_id = uuid.uuid4()
    await vault.create_key(session, org_id=org_id, owner_id=webhook_id)
    secret = new_secret()
    webhook = Webhook(
        id=webhook_id,
        org_id=org_id,
        url=url,
        event_types=event_types,
        description=description,
        secret=secret,
        active=True,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    await session.flush()
    return webhook, secret


async def update_webhook(
    session: AsyncSession,
    webhook: Webhook,
    changes: dict[str, Any],
    *,
    allow_http: bool,
    policy: TargetPolicy,
    now: datetime,
) -> Webhook:
    if changes.get("url") is not None:
        webhook.url = await _check_url(str(changes["url"]), allow_http=allow_http, policy=policy)
    if changes.get("event_types") is not None:
        webhook.event_types = list(changes["event_types"])
    if changes.get("description") is not None:
        webhook.description = changes["description"]
    if changes.get("active") is not None:
        webhook.active = bool(changes["active"])
        if webhook.active:
            webhook.disabled_reason = None
            webhook.failure_since = None
        elif webhook.disabled_reason is None:
            webhook.disabled_reason = "paused by an admin"
    webhook.version += 1
    webhook.updated_at = now
    await session.flush()
    return webhook


async def delete_webhook(session: AsyncSession, vault: Vault, webhook: Webhook) -> None:
    """Delete the endpoint and its delivery log, and shred its secrets' data key."""
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    await session.execute(delete(Delivery).where(Delivery.webhook_id == webhook.id))
    await session.delete(webhook)
    await session.flush()
    await vault.destroy_key(session, webhook.id)


async def rotate_secret(session: AsyncSession, webhook: Webhook, *, now: datetime) -> str:
    """A new secret; the current one stays valid (messages signed with both) for 24 hours."""
    secret = new_secret()
    webhook.previous_secret = webhook.secret
    webhook.previous_secret_expires_at = now + ROTATION_GRACE
    webhook.secret = secret
    webhook.version += 1
    webhook.updated_at = now
    await session.flush()
    return secret


def valid_secrets(webhook: Webhook, now: datetime) -> list[str]:
    found = [str(webhook.secret)] if webhook.secret else []
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret and expires is not None and expires > now:
        found.append(str(webhook.previous_secret))
    return found


def matches(webhook: Webhook, event_type: str) -> bool:
    return any(fnmatchcase(event_type, pattern) for pattern in webhook.event_types or [])


async def fan_out(session: AsyncSession, event: CloudEvent, *, now: datetime) -> int:
    """Queue `event` for each active endpoint of its org that subscribes to its type."""
    org_id = event.org_id
    if org_id is None or not event.type.startswith(FORWARDED_PREFIXES):
        return 0
    event_id = uuid.UUID(event.id)
    webhooks = await session.scalars(
        select(Webhook).where(Webhook.org_id == org_id, Webhook.active.is_(True))
    )
    targets = [w for w in webhooks if matches(w, event.type)]
    if not targets:
        return 0
    existing = set(
        await session.scalars(
            select(WebhookDelivery.webhook_id).where(WebhookDelivery.event_id == event_id)
        )
    )
    payload = {
        "type": event.type,
        "timestamp": event.time.isoformat(),
        "data": thin_data(event.data),
    }
    queued = 0
    for webhook in targets:
        if webhook.id in existing:
            continue
        session.add(
            WebhookDelivery(
                org_id=org_id,
                webhook_id=webhook.id,
                event_id=event_id,
                event_type=event.type,
                payload=payload,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        session.add(
            Delivery(
                org_id=org_id,
                event_id=event_id,
                person_id=None,
                webhook_id=webhook.id,
                channel=Channel.WEBHOOK,
                kind=event.type.removeprefix("upstander.")[:100],
                params={},
                digest=False,
                status=DeliveryStatus.PENDING,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        queued += 1
    await session.flush()
    return queued


async def list_deliveries(
    session: AsyncSession, webhook: Webhook, params: PageParams, status: str | None
) -> tuple[list[WebhookDelivery], str | None]:
    statement = select(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.org_id == webhook.org_id
    )
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return await paginate(session, statement, WebhookDelivery, params, descending=True)


async def mirror_delivery(session: AsyncSession, delivery: WebhookDelivery, now: datetime) -> None:
    """Copy a webhook delivery's state to the send log (`deliveries`, channel webhook)."""
    await session.execute(
        update(Delivery)
        .where(
            Delivery.webhook_id == delivery.webhook_id,
            Delivery.event_id == delivery.event_id,
            Delivery.channel == Channel.WEBHOOK,
        )
        .values(
            status=delivery.status,
            attempts=delivery.attempts,
            error=delivery.error,
            sent_at=delivery.delivered_at,
            next_attempt_at=delivery.next_attempt_at,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _requeue(delivery: WebhookDelivery, now: datetime) -> None:
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.locked_until = None
    delivery.error = None
    delivery.updated_at = now


async def replay_delivery(
    session: AsyncSession, webhook: Webhook, delivery_id: uuid.UUID, *, now: datetime
) -> WebhookDelivery:
    """Send a delivery again, with its original `webhook-id` so receivers can deduplicate."""
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook.id
        )
    )
    if delivery is None:
        raise NotFound("No such delivery for this webhook.")
    _requeue(delivery, now)
    await session.flush()
    await mirror_delivery(session, delivery, now)
    return delivery


async def replay_since(
    session: AsyncSession, webhook: Webhook, since: datetime, *, include_sent: bool, now: datetime
) -> int:
    statuses = [DeliveryStatus.DEAD] + ([DeliveryStatus.SENT] if include_sent else [])
    deliveries = await session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.webhook_id == webhook.id,
            WebhookDelivery.created_at >= since,
            WebhookDelivery.status.in_(statuses),
        )
    )
    count = 0
    requeued = list(deliveries)
    for delivery in requeued:
        _requeue(delivery, now)
        count += 1
    await session.flush()
    for delivery in requeued:
        await mirror_delivery(session, delivery, now)
    return count


async def disable_webhook(
    session: AsyncSession, webhook: Webhook, reason: str, *, app_base_url: str, now: datetime
) -> None:
    """Switch the endpoint off, give up its queued deliveries (they stay replayable), and tell
    the org's admins in their inbox."""
    webhook.active = False
    webhook.disabled_reason = reason
    webhook.updated_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook.id,
            WebhookDelivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
        )
        .values(
            status=DeliveryStatus.DEAD,
            error="endpoint disabled",
            next_attempt_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Delivery)
        .where(
            Delivery.webhook_id == webhook.id,
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
        )
        .values(status=DeliveryStatus.DEAD, error="endpoint disabled", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    link = f"{app_base_url.rstrip('/')}/settings/webhooks/{webhook.id}"
    params = {"webhook_id": str(webhook.id), "reason": reason}
    for admin in await people_with_role(session, webhook.org_id, "admin"):
        rendered = render("webhook.disabled", admin.language, params, link)
        await deliver_inbox_message(
            session,
            webhook.org_id,
            admin.id,
            "webhook.disabled",
            rendered.subject,
            rendered.inbox_body,
            link,
            now=now,
        )
    await session.flush()
