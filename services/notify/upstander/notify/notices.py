"""Case notices: who hears that a case needs attention, in the inbox and by email. A notice
names the case number and links to the case; the case file itself stays behind its access
checks, so nothing here can leak content."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.events import CloudEvent
from upstander.notify.directory.service import people_with_role
from upstander.notify.inbox.service import deliver_inbox_message
from upstander.notify.mail.templates import render
from upstander.notify.models import CaseRoute, Channel, Delivery, DeliveryStatus

REVIEWERS = "reviewers"
CASE_MANAGERS = "case_managers"
ROLE_FOR_ROUTE = {REVIEWERS: "reviewer", CASE_MANAGERS: "case_manager"}
NUMBER_MAX = 64


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def case_link(app_base_url: str, case_id: uuid.UUID | str) -> str:
    return f"{app_base_url.rstrip('/')}/cases/{case_id}"


async def _route_of(
    session: AsyncSession, event: CloudEvent, org_id: uuid.UUID, case_id: uuid.UUID, number: str
) -> str:
    """The routing of a case: from the event if it says, else as remembered from its opening.
    Unknown routing goes to case managers (the default route)."""
    stated = event.data.get("routed_to")
    route = await session.get(CaseRoute, case_id)
    if route is not None and route.org_id != org_id:
        route = None
    if stated in ROLE_FOR_ROUTE:
        if route is None:
            session.add(CaseRoute(id=case_id, org_id=org_id, number=number, routed_to=stated))
        return str(stated)
    return route.routed_to if route is not None else CASE_MANAGERS


async def notify_case_handlers(
    session: AsyncSession, event: CloudEvent, *, app_base_url: str, now: datetime
) -> int:
    """Tell the people who handle a case's route about `case.opened` / a reporter's
    `case.message_posted`: an inbox message each, and an email queued for the worker.
    Returns how many people were told. Repeats of the same event tell nobody twice."""
    kind = event.type.removeprefix("upstander.")
    org_id = event.org_id
    case_id = _uuid(event.data.get("case_id"))
    number = str(event.data.get("number") or "")[:NUMBER_MAX]
    if org_id is None or case_id is None or not number:
        return 0
    if kind == "case.message_posted" and event.data.get("author") != "reporter":
        return 0
    route = await _route_of(session, event, org_id, case_id, number)
    restricted = {u for u in (_uuid(v) for v in event.data.get("restricted_person_ids") or []) if u}
    recipients = await people_with_role(
        session, org_id, ROLE_FOR_ROUTE[route], excluding=restricted
    )
    event_id = uuid.UUID(event.id)
    already = {
        (row.person_id, row.channel)
        for row in await session.execute(
            select(Delivery.person_id, Delivery.channel).where(Delivery.event_id == event_id)
        )
    }
    link = case_link(app_base_url, case_id)
    params = {"number": number, "case_id": str(case_id)}
    told = 0
    for person in recipients:
        rendered = render(kind, person.language, params, link)
        if (person.id, Channel.INBOX) not in already:
            await deliver_inbox_message(
                session,
                org_id,
                person.id,
                kind,
                rendered.subject,
                rendered.inbox_body,
                link,
                now=now,
            )
            session.add(
                Delivery(
                    org_id=org_id,
                    event_id=event_id,
                    person_id=person.id,
                    channel=Channel.INBOX,
                    kind=kind,
                    params=params,
                    status=DeliveryStatus.SENT,
                    attempts=1,
                    sent_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            told += 1
        if person.email and (person.id, Channel.EMAIL) not in already:
            session.add(
                Delivery(
                    org_id=org_id,
                    event_id=event_id,
                    person_id=person.id,
                    channel=Channel.EMAIL,
                    kind=kind,
                    params=params,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    await session.flush()
    return told
