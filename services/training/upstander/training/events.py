"""What the training service consumes: `upstander.person.*` keeps the people projection."""

from __future__ import annotations

import uuid
from datetime import UTC

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest
from upstander.kit.events import CloudEvent
from upstander.training.people.service import apply_person_event


async def on_person_event(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    try:
        org_id = uuid.UUID(event.orgid) if event.orgid else None
    except ValueError as exc:
        raise BadRequest("The event's orgid is not a UUID.") from exc
    at = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
    await apply_person_event(
        session, event_type=event.type, org_id=org_id, data=event.data, at=at.astimezone(UTC)
    )


HANDLERS = {"upstander.person.*": on_person_event}
