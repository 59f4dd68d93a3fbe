"""The events the cases service consumes: the directory projection (orgs, people; a person's
record can reroute cases they are involved in) and the reports intake hands over. What it
emits (`case.opened`, `case.message_posted`...) is published by the domain code in the same
transaction as the change."""

from __future__ import annotations

import uuid

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases import flows
from upstander.cases.cases.schemas import AttachmentAdded, ReportSubmitted
from upstander.cases.cases.service import extend_chains_for_person
from upstander.cases.directory.service import as_uuid, upsert_org, upsert_person
from upstander.cases.models import Case
from upstander.cases.report.service import queue_attachment_files
from upstander.cases.workflow.service import reroute_for_person
from upstander.kit.clock import for_reporter
from upstander.kit.errors import BadRequest
from upstander.kit.events import CloudEvent, Handler


def _org_of(event: CloudEvent, data_org_id: uuid.UUID | None) -> uuid.UUID:
    """The event's organisation: `orgid` and `data.org_id` must agree when both are given."""
    envelope_org = as_uuid(event.orgid)
    if envelope_org and data_org_id and envelope_org != data_org_id:
        raise BadRequest("The event's orgid and data.org_id differ.")
    org_id = data_org_id or envelope_org
    if org_id is None:
        raise BadRequest("The event names no organisation.")
    return org_id


def _invalid(event: CloudEvent, error: ValidationError) -> BadRequest:
    # Field locations only: the values may be report content.
    fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
    return BadRequest(f"Malformed {event.type} data.", fields=fields)


async def on_org(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    await upsert_org(session, event.data, org_id=as_uuid(event.orgid))


async def on_person(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    person = await upsert_person(
        session,
        request.app.state.vault,
        event.data,
        org_id=as_uuid(event.orgid),
        deactivated=event.type == "upstander.person.deactivated",
    )
    if person is None:
        return
    now = request.app.state.clock.now()
    if person.manager_id is not None:
        # A new manager (or a person named in a report before they reached the directory):
        # cases hidden from this person must now be hidden from whoever is above them too.
        await extend_chains_for_person(
            session, person.org_id, person.id, events=request.app.state.events, now=now
        )
    # Their record may show that someone involved is leadership or above a case manager:
    # such cases go to independent reviewers, as when an allegation names them.
    await reroute_for_person(session, person, events=request.app.state.events, now=now)


async def on_report_submitted(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    try:
        report = ReportSubmitted.model_validate(event.data)
    except ValidationError as error:
        raise _invalid(event, error) from None
    org_id = _org_of(event, report.org_id)
    received_at = report.submitted_at or event.time
    if received_at.tzinfo is None:
        raise BadRequest("submitted_at must carry a timezone.")
    case = await flows.open_case_from_report(
        session,
        report,
        org_id=org_id,
        received_at=received_at,
        vault=request.app.state.vault,
        events=request.app.state.events,
        clock=request.app.state.clock,
    )
    await _queue_files(session, case, request)


async def _queue_files(session: AsyncSession, case: Case, request: Request) -> None:
    """The attachments' bytes are fetched from intake after this transaction commits
    (report.fetcher); their pending rows commit with the event, so none is forgotten."""
    # An anonymous or confidential reporter's files are queued at the hour (kit.clock).
    now = for_reporter(request.app.state.clock.now(), case.reporter_mode)
    if await queue_attachment_files(session, case, now=now):
        request.app.state.attachment_fetcher.wake_after_commit(session)


async def on_attachment_added(session: AsyncSession, event: CloudEvent, request: Request) -> None:
    data = dict(event.data)
    nested = data.pop("attachment", None)
    if isinstance(nested, dict):
        data = {**nested, **data}
    try:
        added = AttachmentAdded.model_validate(data)
    except ValidationError as error:
        raise _invalid(event, error) from None
    case = await flows.add_attachment(
        session,
        org_id=_org_of(event, added.org_id),
        report_id=added.report_id,
        attachment=added,
        vault=request.app.state.vault,
        clock=request.app.state.clock,
    )
    await _queue_files(session, case, request)


HANDLERS: dict[str, Handler] = {
    "upstander.org.*": on_org,
    "upstander.person.*": on_person,
    "upstander.report.submitted": on_report_submitted,
    "upstander.report.attachment_added": on_attachment_added,
}
