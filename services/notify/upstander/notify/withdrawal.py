"""Taking notices back. When cases hides a case from more people (an allegation names someone
after the case opened, a new manager joins a chain, a handler recuses), it publishes
`upstander.case.restricted` with the case id and those people's ids. Notify then remembers
the restriction (no notice about the case reaches them again), deletes the messages about the
case from their inboxes, cancels the emails about it not yet sent to them (digests included),
and withdraws what their webhook endpoints hold about it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.contracts import CaseRestricted
from upstander.kit.events import CloudEvent
from upstander.notify.inbox.service import withdraw_case_messages
from upstander.notify.mail.service import cancel_case_emails
from upstander.notify.restrictions import remember
from upstander.notify.webhooks.service import withdraw_case_deliveries

log = logging.getLogger("upstander.notify.withdrawal")


@dataclass(frozen=True)
class Withdrawn:
    """What one `case.restricted` took back."""

    inbox_messages: int = 0
    emails: int = 0
    webhook_deliveries: int = 0


async def withdraw_case_notices(
    session: AsyncSession, event: CloudEvent, restricted: CaseRestricted, *, now: datetime
) -> Withdrawn:
    """Apply a `case.restricted` event (its data parsed: `{case_id, person_ids}`, at least one
    person); repeats change nothing."""
    org_id = event.org_id
    case_id, people = restricted.case_id, set(restricted.person_ids)
    if org_id is None:
        log.warning("case.restricted without an organisation", extra={"event_id": event.id})
        return Withdrawn()
    await remember(session, org_id, case_id, people, now=now)
    withdrawn = Withdrawn(
        inbox_messages=await withdraw_case_messages(session, org_id, case_id, people),
        emails=await cancel_case_emails(session, org_id, case_id, people, now=now),
        webhook_deliveries=await withdraw_case_deliveries(
            session, org_id, case_id, people, now=now
        ),
    )
    await session.flush()
    # Counts and the case id only: never who.
    log.info(
        "case notices withdrawn",
        extra={
            "case_id": str(case_id),
            "inbox_messages": withdrawn.inbox_messages,
            "emails": withdrawn.emails,
            "webhook_deliveries": withdrawn.webhook_deliveries,
        },
    )
    return withdrawn
