"""From report to case: open the case of a submitted report exactly once, seal its content,
hide it from the people it must never reach, and announce it; attach later files.

Everything written for an anonymous or confidential report (the case, its report and
attachment rows, restrictions, data key, `case.opened`, log lines) carries the hour only,
never the moment of delivery, which follows the reporter's submission within milliseconds."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import append as audit_append
from upstander.cases.cases import service
from upstander.cases.cases.schemas import AttachmentMeta, ReportSubmitted, report_content
from upstander.cases.directory.service import foreign_people, managers_above, org_slug
from upstander.cases.models import (
    Case,
    CaseAttachment,
    CaseLink,
    CaseReport,
    LinkKind,
    ReporterMode,
    RestrictionReason,
)
from upstander.kit.clock import Clock, for_reporter
from upstander.kit.contracts import CaseOpened
from upstander.kit.crypto import Vault
from upstander.kit.errors import NotFound
from upstander.kit.events import EventBus
from upstander.kit.observability import COARSE_TIME, keep_time_coarse

log = logging.getLogger("upstander.cases")

CASE_OPENED = "upstander.case.opened"
# Audit action: a report named people of another organisation; they were left out.
FOREIGN_PEOPLE_DROPPED = "case.foreign_people_dropped"


async def open_case_from_report(
    session: AsyncSession,
    report: ReportSubmitted,
    *,
    org_id: uuid.UUID,
    received_at: datetime,
    vault: Vault,
    events: EventBus,
    clock: Clock,
    source: str | None = None,
) -> Case:
    """Open (or find) the report's case. The first time only: create the case's data key,
    seal the report into it, record who may never see it, and publish `case.opened` — all in
    the caller's transaction. A repeat (same event redelivered, or another event for the same
    report) changes nothing but adds attachments not seen yet. `source` is recorded in the
    sealed content when the report did not come through intake (`hr_system`)."""
    slug = report.org_slug or await org_slug(session, org_id) or "case"
    reporter_person_id = report.reporter.person_id if report.reporter else None
    involved = {m.person_id for m in report.people_involved if m.person_id is not None}
    excluded = set(report.excluded_person_ids)
    # Another organisation's people are no one this case can name (intake refuses the ids it
    # knows to be foreign; this catches what its directory did not hold yet): dropped from
    # routing and restrictions, and their number recorded on the case's audit trail below.
    foreign = await foreign_people(session, org_id, involved | excluded)
    involved, excluded = involved - foreign, excluded - foreign
    routed_to = await service.route_for(session, org_id, involved)
    case = await service.open_case(
        session,
        org_id=org_id,
        org_slug=slug,
        report_id=report.report_id,
        received_at=received_at,
        categories=report.categories,
        clock=clock,
        reporter_mode=ReporterMode(report.mode),
        reporter_person_id=reporter_person_id if report.mode == ReporterMode.IDENTIFIED else None,
        routed_to=routed_to,
        # Numbered last (below), so the org's counter row is locked only until the commit
        # that follows, not for the whole opening: openings of one org run in parallel.
        number_later=True,
    )
    fresh = service.opened_now(case)  # opened by this call, not found
    coarse_times = report.mode != ReporterMode.IDENTIFIED
    if coarse_times:
        keep_time_coarse()  # this delivery's log lines, its access line included
    now = for_reporter(clock.now(), report.mode)
    # Not in the savepoint of open_case: a key made there could outlive a rolled-back one.
    await vault.create_key(
        session, org_id=org_id, owner_id=case.id, created_at=now, new_owner=fresh
    )
    if not fresh:
        already = await session.scalar(select(CaseReport.id).where(CaseReport.case_id == case.id))
        if already is not None:
            await record_attachments(session, case, report.attachments, now=now)
            return case

    content = report_content(report)
    if source is not None:
        content["source"] = source
    session.add(
        CaseReport(
            org_id=org_id,
            case_id=case.id,
            content=content,
            created_at=now,
            updated_at=now,
        )
    )
    await record_attachments(session, case, report.attachments, now=now)

    # No `case.restricted` here: nobody has been told of the case yet, and `case.opened`
    # below carries every restriction.
    await service.restrict(
        session, case, involved, RestrictionReason.INVOLVED, events=None, now=now
    )
    await service.restrict(
        session, case, excluded, RestrictionReason.EXCLUDED, events=None, now=now
    )
    if fresh:
        # What restrict_chain would read back: this case's involved people are `involved`.
        chain = await managers_above(session, org_id, involved)
        await service.restrict(session, case, chain, RestrictionReason.CHAIN, events=None, now=now)
    else:
        await service.restrict_chain(session, case, events=None, now=now)

    if foreign:
        await audit_append(
            session,
            org_id=org_id,
            actor_kind="system",
            actor_id="intake",
            action=FOREIGN_PEOPLE_DROPPED,
            at=now,
            case_id=case.id,
            detail={"count": len(foreign)},
        )
        log.warning("report named people of another organisation", extra={"count": len(foreign)})

    if fresh:  # nothing else restricts a case nobody has seen yet: no need to read it back
        restricted = sorted({str(person_id) for person_id in involved | excluded | chain})
    else:
        restricted = await service.restricted_person_ids(session, case.id)
    # The number, last: only the event's row and the commit follow while the org's counter
    # is held (see service.number_case).
    await service.number_case(session, case, slug)
    await events.publish(
        session,
        CASE_OPENED,
        f"case/{case.id}",
        CaseOpened(
            case_id=case.id,
            number=case.number,
            routed_to=case.routed_to.value,
            restricted_person_ids=restricted,
        ).model_dump(mode="json"),
        org_id=org_id,
        at=now,
    )
    # Identifiers only: never report content, names or contact details.
    log.info(
        "case opened",
        extra={
            "case_id": str(case.id),
            "restricted": len(restricted),
            "routed_to": case.routed_to.value,
            COARSE_TIME: coarse_times,
        },
    )
    return case


async def record_attachments(
    session: AsyncSession, case: Case, attachments: Iterable[AttachmentMeta], *, now: datetime
) -> None:
    """Record attachment metadata on the case; an attachment already recorded is skipped."""
    wanted = {a.attachment_id: a for a in attachments}
    if not wanted:
        return
    known = set(
        await session.scalars(
            select(CaseAttachment.attachment_id).where(
                CaseAttachment.case_id == case.id,
                CaseAttachment.attachment_id.in_(wanted),
            )
        )
    )
    for attachment_id, meta in wanted.items():
        if attachment_id in known:
            continue
        session.add(
            CaseAttachment(
                org_id=case.org_id,
                case_id=case.id,
                attachment_id=attachment_id,
                filename=meta.filename,
                content_type=meta.content_type or "application/octet-stream",
                size=meta.size or 0,
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()


async def add_attachment(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    report_id: uuid.UUID,
    attachment: AttachmentMeta,
    vault: Vault,
    clock: Clock,
) -> Case:
    """Record a file added to a report after submission on the report's case. `NotFound`
    while the case is not open yet (the relay retries: the submission arrives first)."""
    case = await service.case_of_report(session, org_id, report_id)
    if case is None:
        raise NotFound("No case for that report yet.")
    if case.reporter_mode != ReporterMode.IDENTIFIED:
        keep_time_coarse()
    now = for_reporter(clock.now(), case.reporter_mode)
    await vault.create_key(session, org_id=org_id, owner_id=case.id, created_at=now)
    await record_attachments(session, case, [attachment], now=now)
    return case


async def link_escrow_cases(
    session: AsyncSession, case: Case, report_ids: Iterable[uuid.UUID], *, clock: Clock
) -> int:
    """Link `case` (`same_subject`) to the cases of reports released from the same escrow
    match (intake's docs/escrow.md); a pair already linked, or a report without a case yet,
    is skipped. Returns how many links were made."""
    others = (
        await session.scalars(
            select(Case).where(
                Case.org_id == case.org_id,
                Case.report_id.in_(list(report_ids)),
                Case.id != case.id,
            )
        )
    ).all()
    made = 0
    now = for_reporter(clock.now(), case.reporter_mode)
    for other in others:
        existing = await session.scalar(
            select(CaseLink.id).where(
                CaseLink.org_id == case.org_id,
                CaseLink.kind == LinkKind.SAME_SUBJECT,
                or_(
                    (CaseLink.case_id == case.id) & (CaseLink.linked_case_id == other.id),
                    (CaseLink.case_id == other.id) & (CaseLink.linked_case_id == case.id),
                ),
            )
        )
        if existing is None:
            session.add(
                CaseLink(
                    org_id=case.org_id,
                    case_id=case.id,
                    linked_case_id=other.id,
                    kind=LinkKind.SAME_SUBJECT,
                    created_by="escrow",
                    created_at=now,
                )
            )
            made += 1
    await session.flush()
    return made
