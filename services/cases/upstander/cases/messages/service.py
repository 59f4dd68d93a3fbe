"""Messages of a case: post one (sealed under the case's key, announced without its body),
and page through them oldest first. Callers pass a case they already may see.

An anonymous or confidential reporter's message is stored at the hour it was written, or, when
the conversation already holds a message from later in that hour, one microsecond after the
latest message: the conversation (paged by `(created_at, id)`) keeps its order, and the stored
time tells no more than the message's place in it. Its `case.message_posted` event carries
the hour. Handlers' messages keep their exact time."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases.service import restricted_person_ids
from upstander.cases.models import AuthorKind, Case, CaseReport, Message, ReporterMode
from upstander.kit.clock import for_reporter
from upstander.kit.contracts import CaseMessagePosted
from upstander.kit.crypto import Vault
from upstander.kit.events import EventBus
from upstander.kit.pagination import PageParams, paginate

MESSAGE_POSTED = "upstander.case.message_posted"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


async def post_message(
    session: AsyncSession,
    case: Case,
    *,
    author: AuthorKind,
    body: str,
    author_person_id: uuid.UUID | None = None,
    is_feedback: bool = False,
    vault: Vault,
    events: EventBus,
    now: datetime,
) -> Message:
    """Add a message to `case` and publish `case.message_posted` (identifiers only). A
    handler's message marked `is_feedback` records that the reporter got their feedback."""
    event_at: datetime | None = None
    if author == AuthorKind.REPORTER:
        event_at = for_reporter(now, case.reporter_mode)
        now = await _reporter_message_time(session, case, now)
    # Idempotent: the case's key normally exists already.
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id, created_at=event_at)
    is_feedback = is_feedback and author == AuthorKind.HANDLER
    if is_feedback and case.feedback_sent_at is None:
        case.feedback_sent_at = now
        case.updated_at = now
    message = Message(
        org_id=case.org_id,
        case_id=case.id,
        author_kind=author,
        author_person_id=author_person_id if author == AuthorKind.HANDLER else None,
        body=body,
        is_feedback=is_feedback,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    notice = await reporter_notice(session, case) if author == AuthorKind.HANDLER else None
    # No `reporter_notice` key at all when there is none (exclude_none).
    data = CaseMessagePosted(
        case_id=case.id,
        number=case.number,
        author=author.value,
        restricted_person_ids=await restricted_person_ids(session, case.id),
        reporter_notice=notice,
    ).model_dump(mode="json", exclude_none=True)
    # Sealed in the outbox (catalogue.SENSITIVE_TYPES): it may carry the reporter's address.
    await events.publish(
        session, MESSAGE_POSTED, f"case/{case.id}", data, org_id=case.org_id, at=event_at
    )
    return message


async def _reporter_message_time(session: AsyncSession, case: Case, now: datetime) -> datetime:
    """When a reporter's message is stored (see the module): exact for an identified
    reporter; otherwise the hour, or just after the latest message if that is later."""
    if case.reporter_mode == ReporterMode.IDENTIFIED:
        return now
    stamp = for_reporter(now, case.reporter_mode)
    latest = await session.scalar(
        select(func.max(Message.created_at)).where(
            Message.org_id == case.org_id, Message.case_id == case.id
        )
    )
    if latest is not None and latest >= stamp:
        return latest + timedelta(microseconds=1)
    return stamp


async def reporter_notice(session: AsyncSession, case: Case) -> dict[str, str] | None:
    """Where to tell a confidential reporter "you have a new message": only when they gave an
    email address. Anonymous and identified reporters get none (the latter sign in)."""
    report = await session.scalar(select(CaseReport).where(CaseReport.case_id == case.id))
    content = report.content if report is not None else None
    reporter = (content or {}).get("reporter") or {}
    address = str(reporter.get("contact") or "").strip()
    if not EMAIL.fullmatch(address):
        return None
    language = "es" if (content or {}).get("language") == "es" else "en"
    return {"channel": "email", "address": address, "language": language}


async def list_messages(
    session: AsyncSession, case: Case, page: PageParams
) -> tuple[list[Message], str | None]:
    """The case's messages, oldest first, one keyset page at a time."""
    statement = select(Message).where(Message.org_id == case.org_id, Message.case_id == case.id)
    return await paginate(session, statement, Message, page)
