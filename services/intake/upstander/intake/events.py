"""What intake emits (report events) and the handlers of what it consumes (the gateway's
organisations, which it keeps as its registry of reporting forms, and which organisation each
person belongs to)."""

from __future__ import annotations

import logging

from upstander.intake.directory.service import record_person
from upstander.intake.forms.service import ensure_org
from upstander.kit.contracts import OrgEvent, PersonEvent, organisation_of, parse_event
from upstander.kit.events import CloudEvent, EventContext, Handler

log = logging.getLogger("upstander.intake.events")

# Emitted; both are sealed in the outbox (upstander.kit.catalogue.SENSITIVE_TYPES).
REPORT_SUBMITTED = "upstander.report.submitted"
ATTACHMENT_ADDED = "upstander.report.attachment_added"


async def on_org(event: CloudEvent, ctx: EventContext) -> None:
    """`upstander.org.created` / `.updated`: `{org_id, slug, name, active}`.

    A slug held by another organisation raises `Conflict` (409), so the transport retries
    until the event that frees it has arrived; a malformed event is an `InvalidEvent` (a dead
    letter at once), and a slug intake cannot use is logged and skipped, since retrying
    cannot fix either."""
    org = parse_event(event, OrgEvent)
    try:
        await ensure_org(
            ctx.session,
            organisation_of(org),
            org.slug,
            org.name if "name" in org.model_fields_set else None,
            active=org.active if "active" in org.model_fields_set else None,
        )
    except ValueError:
        log.warning("org event with a malformed slug", extra={"event_id": event.id})


async def on_person(event: CloudEvent, ctx: EventContext) -> None:
    """`upstander.person.*`: only `{person_id, org_id}` is kept (see `intake.directory`); a
    malformed event is an `InvalidEvent` (a dead letter at once)."""
    from upstander.intake.escrow.service import Escrow, record_alias  # imports this module

    person = parse_event(event, PersonEvent)
    await record_person(ctx.session, person, now=ctx.clock.now())
    escrow = ctx.resource("escrow", Escrow)
    if escrow is not None and person.org_id is not None:
        # Their work email's blind index, so an escrow entry naming it matches them.
        await record_alias(
            ctx.session,
            escrow,
            org_id=person.org_id,
            person_id=person.person_id,
            email=person.email,
            now=ctx.clock.now(),
        )


HANDLERS: dict[str, Handler] = {
    "upstander.org.created": on_org,
    "upstander.org.updated": on_org,
    "upstander.person.*": on_person,
}
