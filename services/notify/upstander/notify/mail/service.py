"""The email queue: `deliveries` rows on the email channel, sent by the worker after the
event's transaction committed, retried with backoff when the mail server fails. Single
notices go out when due (quiet hours push `next_attempt_at`); reminders marked `digest` go
out together, one email per person, when their batch is due."""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.notify.directory.service import normalise_language
from upstander.notify.mail.sender import Mailer, MailError, Outgoing
from upstander.notify.mail.templates import link_for, render, render_digest, template_kind
from upstander.notify.models import (
    WITHDRAWN,
    Channel,
    Delivery,
    DeliveryStatus,
    Person,
    Preference,
)

log = logging.getLogger("upstander.notify.mail")

# After the first failed try: 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 24 h, then dead.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720, 1440))
LEASE = timedelta(minutes=5)
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.BATCHED)


@dataclass(frozen=True)
class Contact:
    org_id: uuid.UUID
    email: str | None
    language: str
    active: bool


def _is_postgres(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    return bool(sessionmaker.kw["bind"].dialect.name == "postgresql")


async def _lease(session: AsyncSession, ids: list[uuid.UUID], now: datetime) -> None:
    """Push `next_attempt_at` past a lease so a second worker (or replica) does not take the
    rows too; the outcome overwrites it."""
    if ids:
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids)).values(next_attempt_at=now + LEASE)
        )


def _due(now: datetime, *, digest: bool) -> Any:
    return (
        Delivery.channel == Channel.EMAIL,
        Delivery.status.in_(UNSENT),
        Delivery.digest.is_(digest),
        Delivery.person_id.is_not(None),
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
    )


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, limit: int
) -> list[Delivery]:
    statement = (
        select(Delivery)
        .where(*_due(now, digest=False))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if _is_postgres(sessionmaker):
        statement = statement.with_for_update(skip_locked=True)
    async with sessionmaker() as session, session.begin():
        rows = list((await session.scalars(statement)).all())
        await _lease(session, [r.id for r in rows], now)
    return rows


async def _claim_digests(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, people: int
) -> list[Delivery]:
    """Every due digest row of up to `people` people: a person's rows are taken together."""
    persons = (
        select(Delivery.person_id)
        .where(*_due(now, digest=True))
        .group_by(Delivery.person_id)
        .order_by(Delivery.person_id)
        .limit(people)
    )
    async with sessionmaker() as session, session.begin():
        chosen = list((await session.scalars(persons)).all())
        if not chosen:
            return []
        statement = select(Delivery).where(*_due(now, digest=True), Delivery.person_id.in_(chosen))
        if _is_postgres(sessionmaker):
            statement = statement.with_for_update(skip_locked=True)
        rows = list((await session.scalars(statement)).all())
        await _lease(session, [r.id for r in rows], now)
    return rows


async def _contacts(
    sessionmaker: async_sessionmaker[AsyncSession], person_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Contact]:
    """Addresses (unsealed here, only for sending) and languages, preferences first."""
    found: dict[uuid.UUID, Contact] = {}
    ids = list(person_ids)
    async with sessionmaker() as session:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            preferred = await session.execute(
                select(Preference.person_id, Preference.language).where(
                    Preference.person_id.in_(chunk), Preference.language.is_not(None)
                )
            )
            languages = {person_id: language for person_id, language in preferred}
            rows = await session.execute(
                select(
                    Person.id, Person.org_id, Person.email, Person.language, Person.active
                ).where(Person.id.in_(chunk))
            )
            for person_id, org_id, address, language, active in rows:
                found[person_id] = Contact(
                    org_id,
                    str(address) if address else None,
                    normalise_language(languages.get(person_id) or language),
                    bool(active),
                )
    return found


def _failed(attempts: int, error: str, now: datetime) -> dict[str, Any]:
    dead = attempts > len(RETRY_DELAYS)
    return {
        "status": DeliveryStatus.DEAD if dead else DeliveryStatus.FAILED,
        "attempts": attempts,
        "error": error[:300],
        "next_attempt_at": None if dead else now + RETRY_DELAYS[attempts - 1],
        "sent_at": None,
        "updated_at": now,
    }


def _sent(attempts: int, now: datetime) -> dict[str, Any]:
    return {
        "status": DeliveryStatus.SENT,
        "attempts": attempts,
        "error": None,
        "next_attempt_at": None,
        "sent_at": now,
        "updated_at": now,
    }


def _gone(row: Delivery, now: datetime) -> dict[str, Any]:
    return {
        "status": DeliveryStatus.DEAD,
        "attempts": row.attempts,
        "error": "recipient unavailable",
        "next_attempt_at": None,
        "sent_at": None,
        "updated_at": now,
    }


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession], outcomes: dict[uuid.UUID, dict[str, Any]]
) -> None:
    if not outcomes:
        return
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Delivery), [{"id": row_id, **values} for row_id, values in outcomes.items()]
        )


async def _send(
    mailer: Mailer,
    groups: list[tuple[list[Delivery], Outgoing]],
    outcomes: dict[uuid.UUID, dict[str, Any]],
    now: datetime,
) -> None:
    """Send one message per group (a group is the rows it stands for) and note the outcome."""
    results = await mailer.send_batch([message for _rows, message in groups])
    for (rows, _message), error in zip(groups, results, strict=True):
        for row in rows:
            attempts = row.attempts + 1
            outcomes[row.id] = (
                _sent(attempts, now) if error is None else _failed(attempts, error, now)
            )
        if error is not None:
            log.warning(
                "email not sent",
                extra={
                    "delivery_id": str(rows[0].id),
                    "attempts": rows[0].attempts + 1,
                    "error": error,
                },
            )


async def send_due_emails(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    *,
    app_base_url: str,
    now: datetime,
    limit: int = 500,
) -> int:
    """Send one batch of due single-notice emails over one connection; returns how many."""
    rows = await _claim(sessionmaker, now, limit)
    if not rows:
        return 0
    contacts = await _contacts(sessionmaker, {r.person_id for r in rows if r.person_id})
    outcomes: dict[uuid.UUID, dict[str, Any]] = {}
    groups: list[tuple[list[Delivery], Outgoing]] = []
    for row in rows:
        contact = contacts.get(row.person_id) if row.person_id else None
        if (
            contact is None
            or not contact.active
            or not contact.email
            or contact.org_id != row.org_id
            or template_kind(row.kind) is None
        ):
            outcomes[row.id] = _gone(row, now)
            continue
        params = {k: str(v) for k, v in (row.params or {}).items()}
        rendered = render(
            row.kind, contact.language, params, link_for(row.kind, params, app_base_url)
        )
        try:
            message = mailer.composer.rendered(contact.email, rendered, row.id.hex)
        except MailError:
            outcomes[row.id] = _gone(row, now)
            continue
        groups.append(([row], message))
    await _send(mailer, groups, outcomes, now)
    await _record(sessionmaker, outcomes)
    return len(rows)


async def send_due_digests(
    sessionmaker: async_sessionmaker[AsyncSession],
    mailer: Mailer,
    *,
    app_base_url: str,
    now: datetime,
    people: int = 500,
) -> int:
    """Send the due daily digests: one email per person for all their batched reminders.
    Returns how many people were tried."""
    rows = await _claim_digests(sessionmaker, now, people)
    if not rows:
        return 0
    by_person: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
    for row in rows:
        assert row.person_id is not None
        by_person[row.person_id].append(row)
    contacts = await _contacts(sessionmaker, set(by_person))
    outcomes: dict[uuid.UUID, dict[str, Any]] = {}
    groups: list[tuple[list[Delivery], Outgoing]] = []
    link = link_for("training.digest", {}, app_base_url)
    for person_id, items in by_person.items():
        contact = contacts.get(person_id)
        if contact is None or not contact.active or not contact.email:
            outcomes.update({row.id: _gone(row, now) for row in items})
            continue
        counts = Counter(row.kind for row in items)
        rendered = render_digest(contact.language, dict(counts), link)
        try:
            message = mailer.composer.rendered(contact.email, rendered, items[0].id.hex)
        except MailError:
            outcomes.update({row.id: _gone(row, now) for row in items})
            continue
        groups.append((items, message))
    await _send(mailer, groups, outcomes, now)
    await _record(sessionmaker, outcomes)
    return len(by_person)


async def cancel_case_emails(
    session: AsyncSession,
    org_id: uuid.UUID,
    case_id: uuid.UUID,
    person_ids: Collection[uuid.UUID],
    *,
    now: datetime,
) -> int:
    """Cancel the emails about `case_id` not yet sent to `person_ids`: queued, held back by
    quiet hours, failed and waiting for a retry, or batched for a digest (the digest then goes
    out without them). They stay in the send log as `dead` with the error `withdrawn`.
    Returns how many were cancelled."""
    if not person_ids:
        return 0
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.org_id == org_id,
            Delivery.case_id == case_id,
            Delivery.person_id.in_(person_ids),
            Delivery.channel == Channel.EMAIL,
            Delivery.status.in_(UNSENT),
        )
        .values(status=DeliveryStatus.DEAD, error=WITHDRAWN, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
