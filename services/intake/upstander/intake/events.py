"""What intake emits (report events) and the handlers of what it consumes (the gateway's
organisations, which it keeps as its registry of reporting forms)."""

from __future__ import annotations

import logging
import uuid

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

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


HANDLERS: dict[str, Handler] = {
    "upstander.org.created": on_org,
    "upstander.org.updated": on_org,
}
