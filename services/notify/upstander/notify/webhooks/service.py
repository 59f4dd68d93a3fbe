"""Webhook endpoints of an org, and the deliveries queued for them. No FastAPI here.

Every endpoint has an owner: the person who registered or last changed it (for an API client,
the client's owning person). A case event reaches an endpoint only when its owner may see the
case, checked per event at fan-out; when a case is hidden from an owner later, what is still
queued (or could be replayed) for their endpoints is withdrawn. Endpoints without a known owner
get no case events at all (docs/threat-model.md, "Conflicts: webhooks and the inbox")."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.crypto import Vault
from upstander.kit.errors import BadRequest, NotFound
from upstander.kit.events import CloudEvent
from upstander.kit.pagination import PageParams, paginate
from upstander.notify.directory.service import people_with_role
from upstander.notify.inbox.service import deliver_inbox_message
from upstander.notify.mail.templates import render
from upstander.notify.models import (
    WITHDRAWN,
    CaseRoute,
    Channel,
    Delivery,
    DeliveryStatus,
    Person,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from upstander.notify.restrictions import RESTRICTED, as_uuid, hidden_from, uuids
from upstander.notify.webhooks.signing import new_secret
from upstander.notify.webhooks.targets import TargetPolicy, check_registration

ROTATION_GRACE = timedelta(hours=24)
CASE_PREFIX = "upstander.case."
# Person events go out thinned to ids (`person_id`, `manager_id`, `external_id`): never a
# name, an email or a role.
FORWARDED_PREFIXES = (CASE_PREFIX, "upstander.training.", "upstander.policy.", "upstander.person.")
# Never forwarded, whatever an endpoint subscribes to: `case.restricted` names the people a
# case is hidden from (the people involved and their chain).
NOT_FORWARDED = frozenset({RESTRICTED})
# Case visibility by role, as cases decides it (`cases.roles.CASE_MANAGER_VIEW` and
# `cases.service._visible_to`): reviewers see every case, case managers and admins the cases
# routed to case managers; restrictions beat every role.
SEES_EVERY_ROUTE = frozenset({"reviewer"})
SEES_CASE_MANAGER_ROUTE = frozenset({"reviewer", "case_manager", "admin"})
CASE_MANAGERS, REVIEWERS = "case_managers", "reviewers"
# Registering an endpoint takes this role: an owner the directory projection does not know
# yet is taken to hold it (and no other).
REGISTERING_ROLE = "admin"
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


def owner_of(principal: Principal) -> uuid.UUID | None:
    """The person accountable for an endpoint the caller registers or changes: the caller, or
    for an API client the person who owns the client (its token's `owner` claim). None when
    that is not known, and such an endpoint gets no case events."""
    if principal.kind == PrincipalKind.STAFF:
        try:
            return principal.person_id
        except ValueError:
            return None
    if principal.kind == PrincipalKind.CLIENT:
        return as_uuid(principal.claims.get("owner"))
    return None


async def create_webhook(
    session: AsyncSession,
    vault: Vault,
    org_id: uuid.UUID,
    *,
    owner_person_id: uuid.UUID | None,
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
        owner_person_id=owner_person_id,
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
    owner_person_id: uuid.UUID | None,
    allow_http: bool,
    policy: TargetPolicy,
    now: datetime,
) -> Webhook:
    """Apply `changes`; the caller becomes the endpoint's owner (`owner_person_id`), so nobody
    can point someone else's endpoint at a place of their own and receive what that person
    may see."""
    webhook.owner_person_id = owner_person_id
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


async def _route_of(session: AsyncSession, org_id: uuid.UUID, data: Mapping[str, Any]) -> str:
    """The group a case is routed to: as the event says, else as notify remembers it, else
    case managers (the default route, as for notices)."""
    stated = data.get("routed_to")
    if stated in (CASE_MANAGERS, REVIEWERS):
        return str(stated)
    case_id = as_uuid(data.get("case_id"))
    route = await session.get(CaseRoute, case_id) if case_id is not None else None
    return route.routed_to if route is not None and route.org_id == org_id else CASE_MANAGERS


async def owners_who_may_see(
    session: AsyncSession,
    org_id: uuid.UUID,
    data: Mapping[str, Any],
    owners: Collection[uuid.UUID],
) -> set[uuid.UUID]:
    """Which of `owners` may see the case of a case event (its `data`), as far as notify can
    tell, failing closed. Never anyone the case is hidden from (the event's
    `restricted_person_ids` and every `case.restricted` since); never an owner the directory
    shows inactive or in another org; then by role as in cases: a reviewer, a case handler
    named in the event (`handler_ids`), or an admin or case manager when the case is routed to
    case managers."""
    candidates = set(owners) - await hidden_from(session, org_id, data)
    if not candidates:
        return set()
    handlers = uuids(data.get("handler_ids"))
    route = await _route_of(session, org_id, data)
    directory = {
        person_id: (person_org, set(roles or ()), bool(active))
        for person_id, person_org, roles, active in await session.execute(
            select(Person.id, Person.org_id, Person.roles, Person.active).where(
                Person.id.in_(candidates)
            )
        )
    }
    allowed: set[uuid.UUID] = set()
    for owner in candidates:
        person_org, roles, active = directory.get(owner, (org_id, {REGISTERING_ROLE}, True))
        if person_org != org_id or not active:
            continue
        by_role = bool(roles & SEES_EVERY_ROUTE) or (
            route == CASE_MANAGERS and bool(roles & SEES_CASE_MANAGER_ROUTE)
        )
        if by_role or owner in handlers:
            allowed.add(owner)
    return allowed


async def fan_out(session: AsyncSession, event: CloudEvent, *, now: datetime) -> int:
    """Queue `event` for each active endpoint of its org that subscribes to its type; a case
    event only for the endpoints whose owner may see the case (`owners_who_may_see`)."""
    org_id = event.org_id
    if org_id is None or not event.type.startswith(FORWARDED_PREFIXES):
        return 0
    if event.type in NOT_FORWARDED:
        return 0
    event_id = uuid.UUID(event.id)
    webhooks = await session.scalars(
        select(Webhook).where(Webhook.org_id == org_id, Webhook.active.is_(True))
    )
    targets = [w for w in webhooks if matches(w, event.type)]
    case_id: uuid.UUID | None = None
    if targets and event.type.startswith(CASE_PREFIX):
        case_id = as_uuid(event.data.get("case_id"))
        owners = {w.owner_person_id for w in targets if w.owner_person_id is not None}
        allowed = await owners_who_may_see(session, org_id, event.data, owners)
        targets = [w for w in targets if w.owner_person_id in allowed]
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
                case_id=case_id,
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
                case_id=case_id,
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


async def withdraw_case_deliveries(
    session: AsyncSession,
    org_id: uuid.UUID,
    case_id: uuid.UUID,
    owner_ids: Collection[uuid.UUID],
    *,
    now: datetime,
) -> int:
    """The case is now hidden from `owner_ids`: delete what their endpoints hold about it
    (queued, failing, dead letters, and sent ones, which could otherwise be replayed); the
    send log keeps sent rows and marks the unsent `dead` / `withdrawn`. Returns how many
    webhook deliveries went."""
    if not owner_ids:
        return 0
    endpoints = list(
        await session.scalars(
            select(Webhook.id).where(
                Webhook.org_id == org_id, Webhook.owner_person_id.in_(owner_ids)
            )
        )
    )
    if not endpoints:
        return 0
    result = await session.execute(
        delete(WebhookDelivery)
        .where(
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.case_id == case_id,
            WebhookDelivery.webhook_id.in_(endpoints),
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Delivery)
        .where(
            Delivery.org_id == org_id,
            Delivery.case_id == case_id,
            Delivery.webhook_id.in_(endpoints),
            Delivery.channel == Channel.WEBHOOK,
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
        )
        .values(status=DeliveryStatus.DEAD, error=WITHDRAWN, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)


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
    """Send again, from now on a fresh schedule, the endpoint's deliveries since `since` that
    did not get through: dead letters and deliveries waiting for their next retry (and, with
    `include_sent`, those that did). One in flight right now is left to its attempt."""
    statuses = [DeliveryStatus.DEAD, DeliveryStatus.FAILED]
    if include_sent:
        statuses.append(DeliveryStatus.SENT)
    deliveries = await session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.webhook_id == webhook.id,
            WebhookDelivery.org_id == webhook.org_id,
            WebhookDelivery.created_at >= since,
            WebhookDelivery.status.in_(statuses),
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until <= now),
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


async def attempts_of(
    session: AsyncSession, delivery_ids: Collection[uuid.UUID], *, latest: int
) -> dict[uuid.UUID, list[WebhookDeliveryAttempt]]:
    """The latest `latest` attempts of each delivery, oldest first."""
    if not delivery_ids:
        return {}
    ranked = (
        select(
            WebhookDeliveryAttempt.id,
            func.row_number()
            .over(
                partition_by=WebhookDeliveryAttempt.delivery_id,
                order_by=(
                    WebhookDeliveryAttempt.number.desc(),
                    WebhookDeliveryAttempt.attempted_at.desc(),
                ),
            )
            .label("rank"),
        )
        .where(WebhookDeliveryAttempt.delivery_id.in_(list(delivery_ids)))
        .subquery()
    )
    rows = await session.scalars(
        select(WebhookDeliveryAttempt)
        .join(ranked, ranked.c.id == WebhookDeliveryAttempt.id)
        .where(ranked.c.rank <= latest)
        .order_by(WebhookDeliveryAttempt.number, WebhookDeliveryAttempt.attempted_at)
    )
    found: dict[uuid.UUID, list[WebhookDeliveryAttempt]] = {i: [] for i in delivery_ids}
    for attempt in rows:
        found[attempt.delivery_id].append(attempt)
    return found


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
