"""The events notify consumes: the directory projection, notices for people (through the
rules), the reporter notice, forwarding to outside webhooks, and withdrawing notices about a
case once it is hidden from more people (`case.restricted`). (Notify emits none.)"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.db import after_commit
from upstander.kit.events import CloudEvent, Handler
from upstander.notify.directory.service import upsert_org, upsert_person
from upstander.notify.notices import notify, notify_reporter, remember_route
from upstander.notify.restrictions import RESTRICTED
from upstander.notify.webhooks.service import fan_out
from upstander.notify.withdrawal import withdraw_case_notices


def _wake_worker(request: Request) -> None:
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        after_commit(request, worker.wake)


async def on_org(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    await upsert_org(session, {**event.data, "org_id": event.data.get("org_id") or event.orgid})


async def on_person(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    await upsert_person(
        session,
        request.app.state.vault,
        event.data,
        org_id=event.org_id,
        deactivated=event.type == "upstander.person.deactivated",
    )


async def on_notice(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    """A case, training or policy event: notices per the org's rules, the reporter's notice
    if there is one, and a copy for subscribed webhooks."""
    state = request.app.state
    now = state.clock.now()
    await remember_route(session, event)
    await notify(session, event, settings=state.settings, now=now)
    await notify_reporter(session, event, mailer=state.worker.mailer, now=now)
    await fan_out(session, event, now=now)
    _wake_worker(request)


on_case_notice = on_notice  # the name the first case notices had


async def on_case_restricted(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    """A case was hidden from more people: take back what they were told about it. Not a
    notice, and never forwarded to webhooks (it names people)."""
    await withdraw_case_notices(session, event, now=request.app.state.clock.now())


HANDLERS: dict[str, Handler] = {
    "upstander.org.*": on_org,
    "upstander.person.*": on_person,
    # Exact types win over patterns (kit.events.event_router).
    RESTRICTED: on_case_restricted,
    "upstander.case.*": on_notice,
    "upstander.training.*": on_notice,
    "upstander.policy.*": on_notice,
}
