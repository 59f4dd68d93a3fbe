"""What the training service consumes: `upstander.person.*` keeps the people projection."""

from __future__ import annotations

from datetime import UTC

from upstander.kit.contracts import PersonEvent, parse_event
from upstander.kit.events import CloudEvent, EventContext, Handler
from upstander.training.people.service import apply_person


async def on_person_event(event: CloudEvent, ctx: EventContext) -> None:
    person = parse_event(event, PersonEvent)  # InvalidEvent (a dead letter) if malformed
    at = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
    await apply_person(ctx.session, person, at=at.astimezone(UTC))


HANDLERS: dict[str, Handler] = {"upstander.person.*": on_person_event}
