"""The events the cases service consumes: the directory projection (orgs, people; a person's
record can reroute cases they are involved in) and the reports intake hands over. What it
emits (`case.opened`, `case.message_posted`...) is published by the domain code in the same
transaction as the change."""

from __future__ import annotations

from upstander.cases.cases import flows
from upstander.cases.cases.flows import link_escrow_cases
from upstander.cases.cases.service import extend_chains_for_person
from upstander.cases.directory.service import upsert_org, upsert_person
from upstander.cases.models import Case
from upstander.cases.report.fetcher import AttachmentFetcher
from upstander.cases.report.service import queue_attachment_files
from upstander.cases.sync.service import release_assignments
from upstander.cases.workflow.service import reroute_for_person
from upstander.kit.clock import for_reporter
from upstander.kit.contracts import (
    AttachmentAdded,
    InvalidEvent,
    OrgEvent,
    PersonEvent,
    ReportSubmitted,
    organisation_of,
    parse_event,
)
from upstander.kit.events import CloudEvent, EventContext, Handler


async def on_org(event: CloudEvent, ctx: EventContext) -> None:
    await upsert_org(ctx.session, parse_event(event, OrgEvent))


async def on_person(event: CloudEvent, ctx: EventContext) -> None:
    session = ctx.session
    person = await upsert_person(session, ctx.vault, parse_event(event, PersonEvent))
    if person is None:
        return
    now = ctx.clock.now()
    if not person.active:
        # Deprovisioned: off every open case at once (the audit trail keeps who handled it).
        await release_assignments(session, person.org_id, person.id, now=now)
    if person.manager_id is not None:
        # A new manager (or a person named in a report before they reached the directory):
        # cases hidden from this person must now be hidden from whoever is above them too.
        await extend_chains_for_person(session, person.org_id, person.id, events=ctx.bus, now=now)
    # Their record may show that someone involved is leadership or above a case manager:
    # such cases go to independent reviewers, as when an allegation names them.
    await reroute_for_person(session, person, events=ctx.bus, now=now)


async def on_report_submitted(event: CloudEvent, ctx: EventContext) -> None:
    # A malformed report is an InvalidEvent: a dead letter at once (its fields named, never
    # its content), not a retry.
    report = parse_event(event, ReportSubmitted)
    org_id = organisation_of(report)
    received_at = report.submitted_at or event.time
    if received_at.tzinfo is None:
        raise InvalidEvent("The event's time must carry a timezone.", fields=["time"])
    case = await flows.open_case_from_report(
        ctx.session,
        report,
        org_id=org_id,
        received_at=received_at,
        vault=ctx.vault,
        events=ctx.bus,
        clock=ctx.clock,
    )
    if report.linked_report_ids:
        # Released from one escrow match (intake docs/escrow.md): same subject.
        await link_escrow_cases(ctx.session, case, report.linked_report_ids, clock=ctx.clock)
    if report.attachments:  # none brought by this event: none of its files to queue
        await _queue_files(ctx, case)


async def _queue_files(ctx: EventContext, case: Case) -> None:
    """The attachments' bytes are fetched from intake after this transaction commits
    (report.fetcher); their pending rows commit with the event, so none is forgotten."""
    # An anonymous or confidential reporter's files are queued at the hour (kit.clock).
    now = for_reporter(ctx.clock.now(), case.reporter_mode)
    if await queue_attachment_files(ctx.session, case, now=now):
        fetcher = ctx.resource("attachment_fetcher", AttachmentFetcher)
        if fetcher is not None:
            fetcher.wake_after_commit(ctx.session)


async def on_attachment_added(event: CloudEvent, ctx: EventContext) -> None:
    added = parse_event(event, AttachmentAdded)
    case = await flows.add_attachment(
        ctx.session,
        org_id=organisation_of(added),
        report_id=added.report_id,
        attachment=added.attachment,
        vault=ctx.vault,
        clock=ctx.clock,
    )
    await _queue_files(ctx, case)


HANDLERS: dict[str, Handler] = {
    "upstander.org.*": on_org,
    "upstander.person.*": on_person,
    "upstander.report.submitted": on_report_submitted,
    "upstander.report.attachment_added": on_attachment_added,
}
