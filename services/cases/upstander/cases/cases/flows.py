"""From report to case: open the case of a submitted report exactly once, seal its content,
hide it from the people it must never reach, and announce it; attach later files."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases import service
from upstander.cases.cases.schemas import AttachmentMeta, ReportSubmitted
from upstander.cases.directory.service import org_slug
from upstander.cases.models import (
    Case,
    CaseAttachment,
    CaseReport,
    ReporterMode,
    RestrictionReason,
)
from upstander.kit.clock import Clock
from upstander.kit.crypto import Vault
from upstander.kit.errors import NotFound
from upstander.kit.events import EventBus

log = logging.getLogger("upstander.cases")

CASE_OPENED = "upstander.case.opened"


async def open_case_from_report(
    session: AsyncSession,
    report: ReportSubmitted,
    *,
    org_id: uuid.UUID,
    received_at: datetime,
    vault: Vault,
    events: EventBus,
    clock: Clock,
) -> Case:
    """Open (or find) the report's case. The first time only: create the case's data key,
    seal the report into it, record who may never see it, and publish `case.opened` — all in
    the caller's transaction. A repeat (same event redelivered, or another event for the same
    report) changes nothing but adds attachments not seen yet."""
    slug = report.org_slug or await org_slug(session, org_id) or "case"
    reporter_person_id = report.reporter.person_id if report.reporter else None
    involved = {m.person_id for m in report.people_involved if m.person_id is not None}
    routed_to = await service.route_for(session, org_id, involved)
    case = await service.open_case(
        session,
        org_id=org_id,
        org_slug=slug,
        report_id=report.report_id,
        received_at=received_at,
        categories=report.categories,
        clock=clock,
        reporter_mode=report.mode,
        reporter_person_id=reporter_person_id if report.mode == ReporterMode.IDENTIFIED else None,
        routed_to=routed_to,
    )
    now = clock.now()
    # Not in the savepoint of open_case: a key made there could outlive a rolled-back one.
    await vault.create_key(session, org_id=org_id, owner_id=case.id)
    already = await session.scalar(select(CaseReport.id).where(CaseReport.case_id == case.id))
    if already is not None:
        await record_attachments(session, case, report.attachments, now=now)
        return case

    session.add(
        CaseReport(
            org_id=org_id, case_id=case.id, content=report.content(), created_at=now, updated_at=now
        )
    )
    await record_attachments(session, case, report.attachments, now=now)

    await service.restrict(session, case, involved, RestrictionReason.INVOLVED, now=now)
    excluded = set(report.excluded_person_ids)
    await service.restrict(session, case, excluded, RestrictionReason.EXCLUDED, now=now)
    await service.restrict_chain(session, case, now=now)

    restricted = await service.restricted_person_ids(session, case.id)
    await events.publish(
        session,
        CASE_OPENED,
        f"case/{case.id}",
        {
            "case_id": str(case.id),
            "number": case.number,
            "routed_to": case.routed_to.value,
            "restricted_person_ids": restricted,
        },
        org_id=org_id,
    )
    # Identifiers only: never report content, names or contact details.
    log.info(
        "case opened",
        extra={
            "case_id": str(case.id),
            "restricted": len(restricted),
            "routed_to": case.routed_to.value,
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
    await vault.create_key(session, org_id=org_id, owner_id=case.id)
    await record_attachments(session, case, [attachment], now=clock.now())
    return case
