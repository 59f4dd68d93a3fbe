"""What intake emits (report events) and the handlers of what it consumes (the gateway's
organisations, which it keeps as its registry of reporting forms, and which organisation each
person belongs to)."""

from __future__ import annotations

import logging
import uuid

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.directory.service import record_person
from upstander.intake.forms.service import ensure_org
from upstander.kit.events import CloudEvent, Handler

log = logging.getLogger("upstander.intake.events")

# Emitted; both are sealed in the outbox (upstander.kit.catalogue.SENSITIVE_TYPES).
REPORT_SUBMITTED = "upstander.report.submitted"
ATTACHMENT_ADDED = "upstander.report.attachment_added"


async def on_org(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    """`upstander.org.created` / `.updated`: `{org_id, slug, name, active}`.

    A slug held by another organisation raises `Conflict` (409), so the relay retries until
    the event that frees it has arrived; a malformed event is logged and skipped, since
    retrying cannot fix it."""
    data = event.data
    try:
        org_id = uuid.UUID(str(data.get("org_id") or event.orgid))
        slug = str(data["slug"])
    except (KeyError, ValueError):
        log.warning("org event without a usable org_id or slug", extra={"event_id": event.id})
        return
    name = data.get("name")
    active = data.get("active")
    try:
        await ensure_org(
            session,
            org_id,
            slug,
            str(name)[:200] if name is not None else None,
            active=bool(active) if active is not None else None,
        )
    except ValueError:
        log.warning("org event with a malformed slug", extra={"event_id": event.id})


async def on_person(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    """`upstander.person.*`: only `{person_id, org_id}` is kept (see `intake.directory`); a
    malformed event is logged and skipped, since retrying cannot fix it."""
    data = event.data
    try:
        person_id = uuid.UUID(str(data["person_id"]))
        org_id = uuid.UUID(str(data.get("org_id") or event.orgid))
    except (KeyError, ValueError):
        log.warning(
            "person event without a usable person_id or org_id", extra={"event_id": event.id}
        )
        return
    await record_person(session, person_id, org_id, now=request.app.state.clock.now())


HANDLERS: dict[str, Handler] = {
    "upstander.org.created": on_org,
    "upstander.org.updated": on_org,
    "upstander.person.*": on_person,
}
