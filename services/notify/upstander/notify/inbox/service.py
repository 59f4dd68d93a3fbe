"""Inbox logic: delivering messages to a person, that person reading them, and withdrawing
the ones about a case once it is hidden from them."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import NotFound
from upstander.kit.pagination import PageParams, paginate
from upstander.notify.models import BODY_MAX, KIND_MAX, LINK_MAX, SUBJECT_MAX, InboxMessage


def _bounded(name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


async def deliver_inbox_message(
    session: AsyncSession,
    org_id: uuid.UUID,
    person_id: uuid.UUID,
    kind: str,
    subject: str,
    body: str = "",
    link: str | None = None,
    *,
    now: datetime | None = None,
) -> InboxMessage:
    """Put a message in a person's inbox (event handlers call this). Only flushes: the caller's
    transaction decides. `body` is a short notice and must never contain case content."""
    message = InboxMessage(
        org_id=org_id,
        person_id=person_id,
        kind=_bounded("kind", kind, KIND_MAX),
        subject=_bounded("subject", subject, SUBJECT_MAX),
        body=_bounded("body", body, BODY_MAX),
        link=None if link is None else _bounded("link", link, LINK_MAX),
    )
    if now is not None:
        message.created_at = message.updated_at = now
    session.add(message)
    await session.flush()
    return message


def _own(org_id: uuid.UUID, person_id: uuid.UUID) -> Any:
    return (InboxMessage.org_id == org_id) & (InboxMessage.person_id == person_id)


async def list_messages(
    session: AsyncSession,
    org_id: uuid.UUID,
    person_id: uuid.UUID,
    params: PageParams,
    *,
    unread_only: bool = False,
) -> tuple[list[InboxMessage], str | None]:
    statement = select(InboxMessage).where(_own(org_id, person_id))
    if unread_only:
        statement = statement.where(InboxMessage.read_at.is_(None))
    return await paginate(session, statement, InboxMessage, params, descending=True)


async def count_unread(session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID) -> int:
    statement = (
        select(func.count())
        .select_from(InboxMessage)
        .where(_own(org_id, person_id), InboxMessage.read_at.is_(None))
    )
    return int(await session.scalar(statement) or 0)


async def mark_read(
    session: AsyncSession,
    org_id: uuid.UUID,
    person_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    now: datetime,
) -> InboxMessage:
    """Idempotent: a message already read keeps its first `read_at`."""
    message = await session.scalar(
        select(InboxMessage).where(InboxMessage.id == message_id, _own(org_id, person_id))
    )
    if message is None:
        raise NotFound("No such message in your inbox.")
    if message.read_at is None:
        message.read_at = now
        await session.flush()
    return message


async def mark_all_read(
    session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID, *, now: datetime
) -> int:
    result = await session.execute(
        update(InboxMessage)
        .where(_own(org_id, person_id), InboxMessage.read_at.is_(None))
        .values(read_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)


async def withdraw_case_messages(
    session: AsyncSession,
    org_id: uuid.UUID,
    case_id: uuid.UUID,
    person_ids: Collection[uuid.UUID],
) -> int:
    """Delete every message about `case_id` in the inboxes of `person_ids`, read or not: the
    case is hidden from them now, and even its number must not stay in front of them.
    Returns how many went."""
    if not person_ids:
        return 0
    result = await session.execute(
        delete(InboxMessage)
        .where(
            InboxMessage.org_id == org_id,
            InboxMessage.case_id == case_id,
            InboxMessage.person_id.in_(person_ids),
        )
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
