"""The events notify consumes: the directory projection, case notices for people, and
forwarding to outside webhooks. (Notify emits none.)"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.db import after_commit
from upstander.kit.events import CloudEvent, Handler
from upstander.notify.directory.service import upsert_org, upsert_person
from upstander.notify.notices import notify_case_handlers
from upstander.notify.webhooks.service import fan_out


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


async def on_case_notice(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    now = request.app.state.clock.now()
    await notify_case_handlers(
        session, event, app_base_url=request.app.state.settings.app_base_url, now=now
    )
    await fan_out(session, event, now=now)
    _wake_worker(request)


async def on_forwarded(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    if await fan_out(session, event, now=request.app.state.clock.now()):
        _wake_worker(request)


HANDLERS: dict[str, Handler] = {
    "upstander.org.*": on_org,
    "upstander.person.*": on_person,
    "upstander.case.opened": on_case_notice,
    "upstander.case.message_posted": on_case_notice,
    "upstander.case.*": on_forwarded,
    "upstander.training.*": on_forwarded,
    "upstander.policy.*": on_forwarded,
}
