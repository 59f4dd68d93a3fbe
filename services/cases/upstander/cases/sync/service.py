"""HR sync: the case change feed, external references on cases, and what a deprovisioned
person leaves behind (their open assignments). Plain functions over a session; they flush,
never commit, and raise domain errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import append
from upstander.cases.cases import flows
from upstander.cases.cases.schemas import ReportSubmitted
from upstander.cases.cases.service import tombstone_visibility, visibility
from upstander.cases.models import Case, CaseAssignment, CaseStatus
from upstander.cases.sync.changes import FEED
from upstander.cases.sync.models import CaseChange, CaseExternalRef
from upstander.kit.auth import Principal
from upstander.kit.changefeed import MAX_LIMIT
from upstander.kit.clock import Clock, for_reporter
from upstander.kit.crypto import Vault
from upstander.kit.errors import Conflict, NotFound
from upstander.kit.events import EventBus
from upstander.kit.external_refs import has_ref

# Cases whose handling is over: their assignments are history, kept as they were.
FINISHED = (CaseStatus.CLOSED, CaseStatus.REFERRED, CaseStatus.DISMISSED, CaseStatus.DELETED)
FEED_MAX_LIMIT = MAX_LIMIT


# ----------------------------------------------------------------------------- deprovisioning


async def release_assignments(
    session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID, *, now: datetime
) -> int:
    """A person left (deactivated in the directory): they no longer hold any role on an open
    case. Each removal is written to the audit trail (`assignment.released`, by the
    directory), so the case's history still shows who handled it; finished cases keep their
    assignments as they were. Returns how many were released."""
    rows = await session.execute(
        select(CaseAssignment, Case.id)
        .join(Case, Case.id == CaseAssignment.case_id)
        .where(
            CaseAssignment.org_id == org_id,
            CaseAssignment.person_id == person_id,
            Case.org_id == org_id,
            Case.status.not_in(FINISHED),
        )
        .order_by(CaseAssignment.created_at, CaseAssignment.id)
    )
    released = 0
    for assignment, case_id in rows.all():
        await append(
            session,
            org_id=org_id,
            actor_kind="system",
            actor_id="directory",
            action="assignment.released",
            at=now,
            case_id=case_id,
            detail={
                "person_id": str(person_id),
                "role": str(assignment.role.value),
                "assigned_by": assignment.assigned_by,
                "reason": "deactivated",
            },
        )
        await session.delete(assignment)
        released += 1
    await session.flush()
    return released


# ----------------------------------------------------------------------------- external refs


def external_ref_condition(org_id: uuid.UUID, system: str, external_id: str) -> ColumnElement[bool]:
    """The condition on `Case` for "has this external reference"."""
    return has_ref(CaseExternalRef, CaseExternalRef.case_id, Case.id, org_id, system, external_id)


async def external_refs(
    session: AsyncSession, case_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[CaseExternalRef]]:
    found: dict[uuid.UUID, list[CaseExternalRef]] = {case_id: [] for case_id in case_ids}
    if not case_ids:
        return found
    rows = await session.scalars(
        select(CaseExternalRef)
        .where(CaseExternalRef.case_id.in_(case_ids))
        .order_by(CaseExternalRef.system)
    )
    for row in rows:
        found[row.case_id].append(row)
    return found


async def set_external_ref(
    session: AsyncSession, case: Case, system: str, external_id: str, *, now: datetime
) -> tuple[CaseExternalRef, bool]:
    """Give `case` the reference `system:external_id` (replacing its previous one in that
    system). Returns the row and whether anything changed. Another case of the organisation
    holding the same reference is a 409."""
    system = system.strip().lower()
    taken = await session.scalar(
        select(CaseExternalRef).where(
            CaseExternalRef.org_id == case.org_id,
            CaseExternalRef.system == system,
            CaseExternalRef.external_id == external_id,
        )
    )
    if taken is not None and taken.case_id != case.id:
        raise Conflict("Another case has this external reference.", rule="external_ref_taken")
    if taken is not None:
        return taken, False
    current = await session.scalar(
        select(CaseExternalRef).where(
            CaseExternalRef.case_id == case.id, CaseExternalRef.system == system
        )
    )
    if current is not None:
        current.external_id = external_id
        row = current
    else:
        row = CaseExternalRef(
            org_id=case.org_id,
            case_id=case.id,
            system=system,
            external_id=external_id,
            created_at=now,
        )
        session.add(row)
    try:
        await session.flush()
    except IntegrityError as error:  # the same reference set by a concurrent request
        raise Conflict(
            "Another case has this external reference.", rule="external_ref_taken"
        ) from (error)
    return row, True


async def delete_external_ref(session: AsyncSession, case: Case, system: str) -> None:
    row = await session.scalar(
        select(CaseExternalRef).where(
            CaseExternalRef.case_id == case.id, CaseExternalRef.system == system.strip().lower()
        )
    )
    if row is None:
        raise NotFound("The case has no reference in this system.")
    await session.delete(row)
    await session.flush()


# ----------------------------------------------------------------------------- HR-opened cases

# Reports another system received get a report id drawn from the organisation and the
# reference: the same reference always names the same report, so a repeat (or two
# concurrent requests) opens one case (`open_case` is idempotent on the report id).
HR_REPORTS = uuid.UUID("6d1f5a3c-8b0e-4f7a-9c2d-3e4b5a6c7d8e")
HR_SOURCE = "hr_system"


def hr_report_id(org_id: uuid.UUID, system: str, external_id: str) -> uuid.UUID:
    return uuid.uuid5(HR_REPORTS, f"{org_id}/{system}:{external_id}")


async def case_with_ref(
    session: AsyncSession, org_id: uuid.UUID, system: str, external_id: str
) -> Case | None:
    return await session.scalar(
        select(Case).where(
            Case.org_id == org_id, external_ref_condition(org_id, system, external_id)
        )
    )


async def open_hr_case(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    system: str,
    external_id: str,
    data: dict[str, object],
    received_at: datetime,
    vault: Vault,
    events: EventBus,
    clock: Clock,
) -> tuple[Case, bool]:
    """Open the case of a report another system received, exactly as intake's reports are
    opened (deadlines, restrictions, routing, `case.opened`), and give it the other system's
    reference. Returns the case and whether it is new; a case already holding the reference
    is returned as it is. A deleted case's reference is never reused (409)."""
    system = system.strip().lower()
    existing = await case_with_ref(session, org_id, system, external_id)
    if existing is not None:
        if existing.status == CaseStatus.DELETED:
            raise Conflict(
                "The case with this external reference was deleted.", rule="external_ref_taken"
            )
        return existing, False
    report_id = hr_report_id(org_id, system, external_id)
    report = ReportSubmitted.model_validate(
        {**data, "report_id": str(report_id), "org_id": str(org_id)}
    )
    before = await session.scalar(
        select(Case.id).where(Case.org_id == org_id, Case.report_id == report_id)
    )
    case = await flows.open_case_from_report(
        session,
        report,
        org_id=org_id,
        received_at=received_at,
        vault=vault,
        events=events,
        clock=clock,
        source=HR_SOURCE,
    )
    now = for_reporter(clock.now(), case.reporter_mode)
    await set_external_ref(session, case, system, external_id, now=now)
    return case, before is None


# ----------------------------------------------------------------------------- the feed


def encode_feed_cursor(seq: int) -> str:
    return FEED.encode_cursor(seq)


def decode_feed_cursor(cursor: str | None) -> int:
    return FEED.decode_cursor(cursor)


@dataclass
class FeedEntry:
    change: CaseChange
    case: Case
    refs: list[CaseExternalRef]


async def changes(
    session: AsyncSession, principal: Principal, *, after: int, limit: int
) -> tuple[list[FeedEntry], int, bool]:
    """The changes after `after` to cases the caller may see now, in commit order. Returns
    the entries, the position to resume from (past every change read, shown or not) and
    whether more may follow. A case hidden from the caller never shows; a deleted case shows
    once, as its tombstone (`deleted`), to callers whose roles open its routing, and its
    earlier changes no longer show at all.

    One statement reads a window of the organisation's changes with, for each, whether the
    caller may see the case: one snapshot, so every change up to the returned position was
    committed and read (see upstander.kit.changefeed for why numbers follow commit order)."""
    if principal.org_id is None:
        return [], after, False
    org_id = principal.org_id
    visible = case((await visibility(session, principal), True), else_=False).label("visible")
    gone = case((await tombstone_visibility(session, principal), True), else_=False).label("gone")
    rows, position, more = await FEED.read(
        session,
        select(CaseChange, Case, visible, gone).join(
            Case, and_(Case.id == CaseChange.case_id, Case.org_id == org_id)
        ),
        org_id=org_id,
        after=after,
        limit=limit,
        # A tombstone shows to whom its routing opens; any other change to whom may see it.
        shown=lambda row: row[3] if row[0].kind == "deleted" else row[2],
    )
    shown: list[tuple[CaseChange, Case]] = [(row[0], row[1]) for row in rows]
    live = [found.id for change, found in shown if change.kind != "deleted"]
    refs = await external_refs(session, live)
    entries = [FeedEntry(change, found, refs.get(found.id, [])) for change, found in shown]
    return entries, position, more
