"""The events notify consumes: the directory projection, notices for people (through the
rules), the reporter notice, forwarding to outside webhooks, and withdrawing notices about a
case once it is hidden from more people (`case.restricted`). (Notify emits none.)"""

from __future__ import annotations

import logging

from upstander.kit.contracts import (
    CaseRestricted,
    InvalidEvent,
    OrgEvent,
    PersonEvent,
    parse_event,
)
from upstander.kit.events import CloudEvent, EventContext, Handler
from upstander.notify.directory.service import upsert_org, upsert_person
from upstander.notify.notices import notify, notify_reporter, remember_route
from upstander.notify.restrictions import RESTRICTED
from upstander.notify.settings import Settings
from upstander.notify.webhooks.service import fan_out
from upstander.notify.withdrawal import withdraw_case_notices
from upstander.notify.worker import Worker

log = logging.getLogger("upstander.notify.events")


async def on_org(event: CloudEvent, ctx: EventContext) -> None:
    await upsert_org(ctx.session, parse_event(event, OrgEvent))


async def on_person(event: CloudEvent, ctx: EventContext) -> None:
    await upsert_person(ctx.session, ctx.vault, parse_event(event, PersonEvent))
    # HR systems subscribe to people's events: a copy, thinned to ids, for their webhooks.
    if await fan_out(ctx.session, event, now=ctx.clock.now()):
        ctx.after_commit(ctx.require("worker", Worker).wake)


async def on_notice(event: CloudEvent, ctx: EventContext) -> None:
    """A case, training or policy event: notices per the org's rules, the reporter's notice
    if there is one, and a copy for subscribed webhooks."""
    session, now = ctx.session, ctx.clock.now()
    worker = ctx.require("worker", Worker)
    await remember_route(session, event)
    await notify(session, event, settings=ctx.require("settings", Settings), now=now)
    await notify_reporter(session, event, mailer=worker.mailer, now=now)
    await fan_out(session, event, now=now)
    ctx.after_commit(worker.wake)


on_case_notice = on_notice  # the name the first case notices had


async def on_case_restricted(event: CloudEvent, ctx: EventContext) -> None:
    """A case was hidden from more people: take back what they were told about it. Not a
    notice, and never forwarded to webhooks (it names people)."""
    try:
        restricted = parse_event(event, CaseRestricted)
    except InvalidEvent:
        # Nothing usable (no case, no valid person id): ignored, as notify always did with
        # it; retrying cannot help. Ids only in the log.
        log.warning("case.restricted without a case or people", extra={"event_id": event.id})
        return
    await withdraw_case_notices(ctx.session, event, restricted, now=ctx.clock.now())


HANDLERS: dict[str, Handler] = {
    "upstander.org.*": on_org,
    "upstander.person.*": on_person,
    # Exact types win over patterns (kit.events.EventConsumer).
    RESTRICTED: on_case_restricted,
    "upstander.case.*": on_notice,
    "upstander.training.*": on_notice,
    "upstander.policy.*": on_notice,
}
