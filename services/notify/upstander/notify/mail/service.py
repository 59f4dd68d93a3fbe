"""The email queue: `deliveries` rows on the email channel, sent by the worker after the
event's transaction committed, retried with backoff when the mail server fails."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.notify.mail.sender import Mailer, MailError, build_message
from upstander.notify.mail.templates import KINDS, render
from upstander.notify.models import Channel, Delivery, DeliveryStatus, Person
from upstander.notify.notices import case_link

log = logging.getLogger("upstander.notify.mail")

# After the first failed try: 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 24 h, then dead.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720, 1440))
LEASE = timedelta(minutes=5)


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, limit: int
) -> list[Delivery]:
    """Take due emails, pushing their `next_attempt_at` past a lease so a second worker (or
    replica) does not take them too; the outcome overwrites it."""
    statement = (
        select(Delivery)
        .where(
            Delivery.channel == Channel.EMAIL,
            Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if sessionmaker.kw["bind"].dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    async with sessionmaker() as session, session.begin():
        rows = list((await session.scalars(statement)).all())
        if rows:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_([r.id for r in rows]))
                .values(next_attempt_at=now + LEASE)
            )
    return rows


async def send_due_emails(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    *,
    app_base_url: str,
    now: datetime,
    limit: int = 50,
) -> int:
    """Send one batch of due emails; returns how many were tried."""
    rows = await _claim(sessionmaker, now, limit)
    for row in rows:
        async with sessionmaker() as session, session.begin():
            delivery = await session.get(Delivery, row.id)
            if delivery is None:
                continue
            person = await session.get(Person, delivery.person_id) if delivery.person_id else None
            delivery.updated_at = now
            if (
                person is None
                or not person.active
                or not person.email
                or person.org_id != delivery.org_id
                or delivery.kind not in KINDS
            ):
                delivery.status = DeliveryStatus.DEAD
                delivery.error = "recipient unavailable"
                delivery.next_attempt_at = None
                continue
            params = {k: str(v) for k, v in (delivery.params or {}).items()}
            link = case_link(app_base_url, params["case_id"]) if "case_id" in params else ""
            rendered = render(delivery.kind, person.language, params, link)
            message = build_message(
                mailer.settings.mail_from, str(person.email), rendered, delivery.id.hex
            )
            delivery.attempts += 1
            try:
                await mailer.send(message, f"{delivery.created_at:%Y%m%dT%H%M%S}-{delivery.id.hex}")
            except MailError as exc:
                failed_tries = delivery.attempts
                dead = failed_tries > len(RETRY_DELAYS)
                delivery.status = DeliveryStatus.DEAD if dead else DeliveryStatus.FAILED
                delivery.error = str(exc)[:300]
                delivery.next_attempt_at = None if dead else now + RETRY_DELAYS[failed_tries - 1]
                log.warning(
                    "email not sent",
                    extra={
                        "delivery_id": str(delivery.id),
                        "attempts": failed_tries,
                        "dead": dead,
                        "error": delivery.error,
                    },
                )
                continue
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = now
            delivery.error = None
            delivery.next_attempt_at = None
    return len(rows)
