"""Case files: open one from a report (numbering, deadlines), who may never see it
(restrictions), and reading them — always through `visible_case` / `list_cases`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, false, or_, select, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases import deadlines
from upstander.cases.directory.service import managers_above
from upstander.cases.models import (
    Case,
    CaseAssignment,
    CaseCounter,
    CaseRestriction,
    CaseSettings,
    CaseShare,
    CaseStatus,
    Person,
    ReporterMode,
    RestrictionReason,
    RoutedTo,
)
from upstander.cases.roles import CASE_MANAGER_VIEW
from upstander.kit.auth import Principal, PrincipalKind, Role
from upstander.kit.clock import Clock
from upstander.kit.errors import NotFound
from upstander.kit.pagination import PageParams, paginate

NO_SUCH_CASE = "No such case."
_PREFIX_UNSAFE = re.compile(r"[^A-Z0-9]+")


def case_number(org_slug: str, year: int, sequence: int) -> str:
    """`DEMO-2026-0001`: the org's slug in capitals, the year, a sequence of at least 4 digits."""
    # At most 24 characters, so the number fits its column (40) with room for the sequence.
    prefix = _PREFIX_UNSAFE.sub("-", org_slug.upper()).strip("-")[:24].strip("-") or "CASE"
    return f"{prefix}-{year}-{sequence:04d}"


async def next_sequence(session: AsyncSession, org_id: uuid.UUID, year: int) -> int:
    """Take the next number of `org_id` for `year`, in the caller's transaction.

    One UPSERT ... RETURNING: on PostgreSQL the counter row stays locked until the transaction
    ends, so concurrent openings queue behind each other; on SQLite the write lock serialises
    them. A rolled-back opening gives its number back."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(CaseCounter)
        .values(org_id=org_id, year=year, last=1)
        .on_conflict_do_update(
            index_elements=[CaseCounter.org_id, CaseCounter.year],
            set_={"last": CaseCounter.last + 1},
        )
        .returning(CaseCounter.last)
    )
    return int((await session.execute(statement)).scalar_one())


async def _by_report(session: AsyncSession, org_id: uuid.UUID, report_id: uuid.UUID) -> Case | None:
    return await session.scalar(
        select(Case).where(Case.org_id == org_id, Case.report_id == report_id)
    )


async def open_case(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    org_slug: str,
    report_id: uuid.UUID,
    received_at: datetime,
    categories: Sequence[str],
    clock: Clock,
    reporter_mode: ReporterMode = ReporterMode.ANONYMOUS,
    reporter_person_id: uuid.UUID | None = None,
    routed_to: RoutedTo = RoutedTo.CASE_MANAGERS,
) -> Case:
    """Open the case of a report, or return the one it already opened (idempotent on
    `report_id`, so a redelivered `report.submitted` event is harmless). Deadlines follow the
    organisation's settings (never longer than the law's). Only flushes."""
    existing = await _by_report(session, org_id, report_id)
    if existing is not None:
        return existing
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received_at = received_at.astimezone(UTC)
    now = clock.now()
    acknowledge_days, feedback_months = await deadline_settings(session, org_id)
    try:
        # A savepoint: if a concurrent opening of the same report wins, only this attempt
        # (its number included) is undone and the caller's transaction carries on.
        async with session.begin_nested():
            year = received_at.year
            sequence = await next_sequence(session, org_id, year)
            case = Case(
                org_id=org_id,
                number=case_number(org_slug, year, sequence),
                status=CaseStatus.NEW,
                categories=list(categories),
                report_id=report_id,
                reporter_mode=reporter_mode,
                reporter_person_id=(
                    reporter_person_id if reporter_mode == ReporterMode.IDENTIFIED else None
                ),
                received_at=received_at,
                acknowledge_by=deadlines.acknowledge_by(received_at, acknowledge_days),
                feedback_by=deadlines.feedback_by(
                    received_at, acknowledge_days=acknowledge_days, months=feedback_months
                ),
                routed_to=routed_to,
                created_at=now,
                updated_at=now,
            )
            session.add(case)
            await session.flush()
    except IntegrityError:
        existing = await _by_report(session, org_id, report_id)
        if existing is None:
            raise
        return existing
    return case


async def case_of_report(
    session: AsyncSession, org_id: uuid.UUID, report_id: uuid.UUID
) -> Case | None:
    """The case a report opened, if any (for event handlers; not a visibility check)."""
    return await _by_report(session, org_id, report_id)


# ----------------------------------------------------------------------------- restrictions


async def restrict(
    session: AsyncSession,
    case: Case,
    people: Collection[uuid.UUID],
    reason: RestrictionReason,
    *,
    now: datetime,
) -> None:
    """Hide `case` from `people` for `reason` (idempotent; rows are only ever added)."""
    wanted = set(people)
    if not wanted:
        return
    known = set(
        await session.scalars(
            select(CaseRestriction.person_id).where(
                CaseRestriction.case_id == case.id,
                CaseRestriction.reason == reason,
                CaseRestriction.person_id.in_(wanted),
            )
        )
    )
    for person_id in sorted(wanted - known):
        session.add(
            CaseRestriction(
                org_id=case.org_id,
                case_id=case.id,
                person_id=person_id,
                reason=reason,
                created_at=now,
            )
        )
    await session.flush()


async def restrict_chain(session: AsyncSession, case: Case, *, now: datetime) -> None:
    """Hide `case` from everyone above its involved people, per the directory projection."""
    involved = set(
        await session.scalars(
            select(CaseRestriction.person_id).where(
                CaseRestriction.case_id == case.id,
                CaseRestriction.reason == RestrictionReason.INVOLVED,
            )
        )
    )
    chain = await managers_above(session, case.org_id, involved)
    await restrict(session, case, chain, RestrictionReason.CHAIN, now=now)


async def extend_chains_for_person(
    session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID, *, now: datetime
) -> None:
    """A person joined the directory or changed manager: the cases hidden from them as an
    involved person or as part of a chain may now be hidden from someone new above them.
    Only adds; a former manager stays excluded."""
    case_ids = set(
        await session.scalars(
            select(CaseRestriction.case_id).where(
                CaseRestriction.org_id == org_id,
                CaseRestriction.person_id == person_id,
                CaseRestriction.reason.in_([RestrictionReason.INVOLVED, RestrictionReason.CHAIN]),
            )
        )
    )
    if not case_ids:
        return
    for case in await session.scalars(select(Case).where(Case.id.in_(case_ids))):
        await restrict_chain(session, case, now=now)


async def restricted_person_ids(session: AsyncSession, case_id: uuid.UUID) -> list[str]:
    """Who may never see the case or hear about it, for events (notify skips them)."""
    people = await session.scalars(
        select(CaseRestriction.person_id).where(CaseRestriction.case_id == case_id).distinct()
    )
    return sorted(str(person_id) for person_id in people)


# ----------------------------------------------------------------------------- settings


async def deadline_settings(session: AsyncSession, org_id: uuid.UUID) -> tuple[int, int]:
    """(acknowledge_days, feedback_months) of an organisation: the law's unless it set shorter."""
    settings = await session.get(CaseSettings, org_id)
    if settings is None:
        return deadlines.ACKNOWLEDGE_DAYS, deadlines.FEEDBACK_WITHIN_MONTHS
    return (
        min(settings.acknowledge_days, deadlines.ACKNOWLEDGE_DAYS),
        min(settings.feedback_months, deadlines.FEEDBACK_WITHIN_MONTHS),
    )


# ----------------------------------------------------------------------------- routing


async def involved_people(session: AsyncSession, case_id: uuid.UUID) -> set[uuid.UUID]:
    return set(
        await session.scalars(
            select(CaseRestriction.person_id).where(
                CaseRestriction.case_id == case_id,
                CaseRestriction.reason == RestrictionReason.INVOLVED,
            )
        )
    )


async def route_for(
    session: AsyncSession, org_id: uuid.UUID, involved: Collection[uuid.UUID]
) -> RoutedTo:
    """Power dynamics: a case involving leadership, or anyone above one of the org's case
    managers in the reporting chain, goes to independent reviewers only."""
    if not involved:
        return RoutedTo.CASE_MANAGERS
    leadership = await session.scalar(
        select(Person.id)
        .where(Person.org_id == org_id, Person.id.in_(set(involved)), Person.is_leadership)
        .limit(1)
    )
    if leadership is not None:
        return RoutedTo.REVIEWERS
    people = await session.execute(select(Person.id, Person.roles).where(Person.org_id == org_id))
    case_managers = {person_id for person_id, roles in people if Role.CASE_MANAGER in (roles or [])}
    if set(involved) & await managers_above(session, org_id, case_managers):
        return RoutedTo.REVIEWERS
    return RoutedTo.CASE_MANAGERS


# ----------------------------------------------------------------------------- visibility


def actor_of(principal: Principal) -> tuple[str, str]:
    """(kind, id) of a caller for records: a person's id, or an API client's id."""
    kind = "person" if principal.kind == PrincipalKind.STAFF else str(principal.kind)
    return kind, principal.subject


def _visible_to(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition for "`principal` may see this case":

    - in their org, and never when the case is hidden from them (involved, excluded by the
      reporter, above an involved person, recused), whatever their roles or assignments;
    - then any of: assigned to it; shared with them by a reviewer; a reviewer (every case);
      a case manager or admin and the case is routed to case managers."""
    # Tombstones of deleted cases are nobody's to see (their restrictions are gone with them).
    condition: ColumnElement[bool] = (Case.org_id == principal.org_id) & (
        Case.status != CaseStatus.DELETED
    )
    routed_to_case_managers = Case.routed_to == RoutedTo.CASE_MANAGERS
    if principal.has_role(Role.REVIEWER):
        by_role: ColumnElement[bool] = true()
    elif principal.has_role(*CASE_MANAGER_VIEW):
        by_role = routed_to_case_managers
    else:
        by_role = false()
    if principal.kind != PrincipalKind.STAFF:
        return condition & by_role  # API clients are no person: nobody to hide a case from
    try:
        person_id = principal.person_id
    except ValueError:
        return false()  # a person we cannot identify sees nothing
    hidden = exists().where(
        CaseRestriction.case_id == Case.id, CaseRestriction.person_id == person_id
    )
    assigned = exists().where(
        CaseAssignment.case_id == Case.id, CaseAssignment.person_id == person_id
    )
    shared = exists().where(CaseShare.case_id == Case.id, CaseShare.person_id == person_id)
    return condition & ~hidden & or_(by_role, assigned, shared)


async def visible_case(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, *, for_update: bool = False
) -> Case:
    """The one door to a case for handlers: `NotFound` for an unknown id, another
    organisation's case, or a case hidden from the caller (no existence oracle). With
    `for_update` the case row is locked (PostgreSQL) so concurrent changes queue."""
    if principal.org_id is None:
        raise NotFound(NO_SUCH_CASE)
    statement = select(Case).where(Case.id == case_id, _visible_to(principal))
    if for_update:
        statement = statement.with_for_update(of=Case)
    case = await session.scalar(statement.execution_options(populate_existing=True))
    if case is None:
        raise NotFound(NO_SUCH_CASE)
    return case


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    page: PageParams,
    status: CaseStatus | None = None,
) -> tuple[list[Case], str | None]:
    """The cases `principal` may see, newest first, one keyset page at a time."""
    if principal.org_id is None:
        return [], None
    statement = select(Case).where(_visible_to(principal))
    if status is not None:
        statement = statement.where(Case.status == status)
    return await paginate(session, statement, Case, page, descending=True)


async def reporter_case(session: AsyncSession, principal: Principal) -> Case:
    """The case opened from the report a reporter token is scoped to; `NotFound` if none
    (not opened yet, or another organisation's)."""
    if principal.kind != PrincipalKind.REPORTER or principal.report_id is None:
        raise NotFound(NO_SUCH_CASE)
    if principal.org_id is None:
        raise NotFound(NO_SUCH_CASE)
    case = await _by_report(session, principal.org_id, principal.report_id)
    if case is None or case.status == CaseStatus.DELETED:
        raise NotFound(NO_SUCH_CASE)
    return case
