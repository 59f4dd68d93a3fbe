"""Case files: open one from a report (numbering, deadlines), who may never see it
(restrictions), and reading them — always through `visible_case` / `list_cases`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, exists, false, func, inspect, or_, select, true
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

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
from upstander.kit.clock import Clock, for_reporter
from upstander.kit.contracts import CaseRestricted
from upstander.kit.db import upsert_insert
from upstander.kit.errors import NotFound
from upstander.kit.events import EventBus
from upstander.kit.pagination import PageParams, paginate

NO_SUCH_CASE = "No such case."
# How a provisional number starts (`open_case(number_later=True)`); never in a real number.
_UNNUMBERED = "~"
_OPENED_NOW = "upstander.cases.opened_now"
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
    statement = (
        upsert_insert(session, CaseCounter)
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
    number_later: bool = False,
) -> Case:
    """Open the case of a report, or return the one it already opened (idempotent on
    `report_id`, so a redelivered `report.submitted` event is harmless). Deadlines follow the
    organisation's settings (never longer than the law's). Only flushes.

    For an anonymous or confidential reporter `received_at` is floored to the hour
    (`upstander.kit.clock.for_reporter`) and the deadlines count from it: due sooner, never
    later than the law allows. The case's `created_at` is the same hour, or one microsecond
    after the organisation's latest case when that one is later: handlers' lists (newest
    first by `created_at`) keep the order the case numbers already tell, and nothing more.

    With `number_later` a new case gets a provisional number (`is_unnumbered`) and no
    counter is touched: the caller does the rest of its work, then calls `number_case` as
    late as it can before committing. The counter row (locked on PostgreSQL until the commit)
    is then held for milliseconds, not for the whole opening, so openings of one organisation
    run in parallel and queue only for their numbers."""
    existing = await _by_report(session, org_id, report_id)
    if existing is not None:
        inspect(existing).info.pop(_OPENED_NOW, None)  # found now, whoever opened it
        return existing
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received_at = for_reporter(received_at.astimezone(UTC), reporter_mode)
    now = clock.now()
    acknowledge_days, feedback_months = await deadline_settings(session, org_id)
    try:
        # A savepoint: if a concurrent opening of the same report wins, only this attempt
        # (its number included) is undone and the caller's transaction carries on.
        async with session.begin_nested():
            year = received_at.year
            # Only PostgreSQL gains from it: SQLite runs one writer at a time anyway, and there
            # the savepoint below may be the transaction itself (its RELEASE commits), so the
            # provisional number could be seen.
            if number_later and session.get_bind().dialect.name == "postgresql":
                number = f"{_UNNUMBERED}{uuid.uuid4().hex}"
                if reporter_mode != ReporterMode.IDENTIFIED:
                    now = for_reporter(now, reporter_mode)  # `number_case` orders it
            else:
                sequence = await next_sequence(session, org_id, year)
                number = case_number(org_slug, year, sequence)
                if reporter_mode != ReporterMode.IDENTIFIED:
                    # After taking the number: on PostgreSQL its row lock orders the openings.
                    now = await _opened_at(session, org_id, for_reporter(now, reporter_mode))
            case = Case(
                org_id=org_id,
                number=number,
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
            inspect(case).info[_OPENED_NOW] = True
    except IntegrityError:
        existing = await _by_report(session, org_id, report_id)
        if existing is None:
            raise
        return existing
    return case


async def _opened_at(
    session: AsyncSession, org_id: uuid.UUID, hour: datetime, *, besides: uuid.UUID | None = None
) -> datetime:
    """`hour`, or just after the organisation's latest case (other than `besides`) if that
    one is later."""
    statement = select(func.max(Case.created_at)).where(Case.org_id == org_id)
    if besides is not None:
        statement = statement.where(Case.id != besides)
    latest = await session.scalar(statement)
    if latest is not None and latest >= hour:
        return latest + timedelta(microseconds=1)
    return hour


def opened_now(case: Case) -> bool:
    """Whether `open_case` created `case` (rather than found it) in this session."""
    return bool(inspect(case).info.get(_OPENED_NOW))


def is_unnumbered(case: Case) -> bool:
    """A case `open_case(number_later=True)` just opened in this transaction, waiting for
    `number_case` (a case anyone else can see always has its number)."""
    return case.number.startswith(_UNNUMBERED)


async def number_case(session: AsyncSession, case: Case, org_slug: str) -> None:
    """Give a case opened with `number_later` its number: the next of its organisation for
    the year it was received, in the caller's transaction. Call it as late as possible before
    the commit: from here on, the organisation's other openings wait for this transaction
    (on PostgreSQL the counter row stays locked until it ends). An anonymous or confidential
    reporter's case is also placed just after the organisation's latest case (see
    `open_case`), under the same lock. A no-op for a numbered case."""
    if not is_unnumbered(case):
        return
    await session.flush()  # what is pending goes out before the counter is held
    year = case.received_at.year
    sequence = await next_sequence(session, case.org_id, year)
    values: dict[str, Any] = {
        "number": case_number(org_slug, year, sequence),
        # Stated, so the column's onupdate does not stamp a precise time on the new row.
        "updated_at": case.updated_at,
    }
    if case.reporter_mode != ReporterMode.IDENTIFIED:
        opened = await _opened_at(session, case.org_id, case.created_at, besides=case.id)
        values["created_at"] = values["updated_at"] = opened
    # A plain UPDATE, not a change of the mapped object: the row is still the one INSERT made
    # in this transaction (no new version, no change-feed entry beyond its "created").
    table = cast(Table, Case.__table__)
    await session.execute(sql_update(table).where(table.c.id == case.id).values(**values))
    for name, value in values.items():
        set_committed_value(case, name, value)


async def case_of_report(
    session: AsyncSession, org_id: uuid.UUID, report_id: uuid.UUID
) -> Case | None:
    """The case a report opened, if any (for event handlers; not a visibility check)."""
    return await _by_report(session, org_id, report_id)


# ----------------------------------------------------------------------------- restrictions


CASE_RESTRICTED = "upstander.case.restricted"


async def restrict(
    session: AsyncSession,
    case: Case,
    people: Collection[uuid.UUID],
    reason: RestrictionReason,
    *,
    events: EventBus | None,
    now: datetime,
) -> None:
    """Hide `case` from `people` for `reason` (idempotent; rows are only ever added).

    With `events`, the people newly hidden from it are announced in the same transaction
    (`upstander.case.restricted`, `{case_id, person_ids}`: ids only, time `now`, so an
    anonymous reporter's case keeps the hour only): notify withdraws what it already told
    them about the case. `events` is required so that every caller decides; None only where
    nothing can have been told yet."""
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
    added = sorted(wanted - known)
    for person_id in added:
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
    if added and events is not None:
        await events.publish(
            session,
            CASE_RESTRICTED,
            f"case/{case.id}",
            CaseRestricted(case_id=case.id, person_ids=added).model_dump(mode="json"),
            org_id=case.org_id,
            at=now,
        )


async def restrict_chain(
    session: AsyncSession, case: Case, *, events: EventBus | None, now: datetime
) -> None:
    """Hide `case` from everyone above its involved people, per the directory projection
    (announced with `events` as in `restrict`)."""
    involved = set(
        await session.scalars(
            select(CaseRestriction.person_id).where(
                CaseRestriction.case_id == case.id,
                CaseRestriction.reason == RestrictionReason.INVOLVED,
            )
        )
    )
    chain = await managers_above(session, case.org_id, involved)
    await restrict(session, case, chain, RestrictionReason.CHAIN, events=events, now=now)


async def extend_chains_for_person(
    session: AsyncSession,
    org_id: uuid.UUID,
    person_id: uuid.UUID,
    *,
    events: EventBus | None,
    now: datetime,
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
        await restrict_chain(session, case, events=events, now=now)


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


@dataclass(frozen=True)
class ActingPerson:
    """The person whose restrictions bind a caller, and the roles that open cases to them."""

    id: uuid.UUID
    roles: frozenset[str]


async def acting_person(session: AsyncSession, principal: Principal) -> ActingPerson | None:
    """Who a caller answers as, for the per-case rules:

    - a staff member: themselves, with their token's roles;
    - an API client: the person who registered it (its tokens' `owner` claim), with that
      person's roles from the directory projection, read now, so a demotion, a deactivation
      or a new restriction binds the client at once;
    - nobody (None) for anyone else, an ownerless client, or an owner the directory does not
      hold as an active person of the client's organisation: such a caller sees no case."""
    if principal.org_id is None:
        return None
    if principal.kind == PrincipalKind.STAFF:
        try:
            person_id = principal.person_id
        except ValueError:
            return None
        return None if person_id is None else ActingPerson(person_id, principal.roles)
    owner_id = principal.owner_id
    if principal.kind != PrincipalKind.CLIENT or owner_id is None:
        return None
    # Only the columns needed: loading the whole row would decrypt the owner's name and email.
    row = (
        await session.execute(
            select(Person.roles).where(
                Person.id == owner_id,
                Person.org_id == principal.org_id,
                Person.active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return ActingPerson(owner_id, frozenset(str(role) for role in row.roles or []))


def _by_role(roles: Collection[str]) -> ColumnElement[bool]:
    """The cases a set of roles opens: every case for a reviewer, the cases routed to case
    managers for a case manager or admin, none otherwise (assignments and shares aside)."""
    if Role.REVIEWER in roles:
        return true()
    if set(roles) & set(CASE_MANAGER_VIEW):
        return Case.routed_to == RoutedTo.CASE_MANAGERS
    return false()


def _visible_to(principal: Principal, person: ActingPerson | None) -> ColumnElement[bool]:
    """The SQL condition for "`principal` may see this case", `person` being
    `acting_person(principal)`:

    - in their org, and never when the case is hidden from the person (involved, excluded by
      the reporter, above an involved person, recused), whatever the roles or assignments;
    - then any of: assigned to the person; shared with them by a reviewer; opened by their
      roles (`_by_role`).
    - An API client sees what its owner may see (the rules above, for the owner), once its
      scopes let it in at all (`cases:read`): no scope reaches past a restriction of the
      owner's, nor past what the owner's own roles open. A client registered with
      (deprecated) roles sees only the intersection with what those roles open."""
    if person is None:
        return false()  # a caller nobody answers for sees nothing
    # Tombstones of deleted cases are nobody's to see (their restrictions are gone with them).
    condition: ColumnElement[bool] = (Case.org_id == principal.org_id) & (
        Case.status != CaseStatus.DELETED
    )
    hidden = exists().where(
        CaseRestriction.case_id == Case.id, CaseRestriction.person_id == person.id
    )
    assigned = exists().where(
        CaseAssignment.case_id == Case.id, CaseAssignment.person_id == person.id
    )
    shared = exists().where(CaseShare.case_id == Case.id, CaseShare.person_id == person.id)
    persons_view = condition & ~hidden & or_(_by_role(person.roles), assigned, shared)
    if principal.kind == PrincipalKind.CLIENT and principal.roles:
        return persons_view & _by_role(principal.roles)
    return persons_view


async def tombstone_visibility(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition on `Case` for "`principal` may learn that this deleted case is
    gone" (the change feed's tombstones): a tombstone of their organisation whose routing
    their roles open. Its restrictions, assignments and shares went with its content, so
    only the routing is left to go by; a tombstone says no more than its id."""
    person = await acting_person(session, principal)
    if person is None:
        return false()
    condition = (
        (Case.org_id == principal.org_id)
        & (Case.status == CaseStatus.DELETED)
        & _by_role(person.roles)
    )
    if principal.kind == PrincipalKind.CLIENT and principal.roles:
        return condition & _by_role(principal.roles)
    return condition


async def visibility(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition on `Case` for "`principal` may see this case", for any query that
    filters cases for a caller (see `_visible_to`)."""
    return _visible_to(principal, await acting_person(session, principal))


async def visible_case(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, *, for_update: bool = False
) -> Case:
    """The one door to a case for handlers: `NotFound` for an unknown id, another
    organisation's case, or a case hidden from the caller (no existence oracle). With
    `for_update` the case row is locked (PostgreSQL) so concurrent changes queue."""
    if principal.org_id is None:
        raise NotFound(NO_SUCH_CASE)
    statement = select(Case).where(Case.id == case_id, await visibility(session, principal))
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
    updated_since: datetime | None = None,
    conditions: Collection[ColumnElement[bool]] = (),
) -> tuple[list[Case], str | None]:
    """The cases `principal` may see, newest first, one keyset page at a time; with
    `updated_since`, only those whose record changed at or after it; `conditions` narrow
    further (an external reference)."""
    if principal.org_id is None:
        return [], None
    statement = select(Case).where(await visibility(session, principal), *conditions)
    if status is not None:
        statement = statement.where(Case.status == status)
    if updated_since is not None:
        statement = statement.where(Case.updated_at >= updated_since)
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
