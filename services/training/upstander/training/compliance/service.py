"""Compute compliance for the people a caller may see.

The whole organisation's rules and records are loaded in a handful of queries and evaluated
in memory (`engine`), which is fast for organisations of thousands; pages are keyset over
(leadership first, created_at, id). A materialised status table would be the next step for
much larger tenants."""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.auth import Principal
from upstander.kit.errors import BadRequest
from upstander.training.access import org_of, reads_everything
from upstander.training.compliance.engine import (
    PERSON_COLUMNS,
    CompletionFact,
    CourseFacts,
    Item,
    PersonFacts,
    PersonLike,
    RequirementFacts,
    Status,
    applies,
    course_item,
    overall,
    policy_item,
)
from upstander.training.models import (
    Acknowledgment,
    Completion,
    Course,
    Exemption,
    Person,
    Policy,
    PolicyVersion,
    Requirement,
)
from upstander.training.people.service import subtree


@dataclass
class PersonCompliance:
    person: PersonLike
    status: Status
    items: list[Item]


@dataclass
class Filters:
    team: uuid.UUID | None = None
    role: str | None = None
    location: str | None = None
    status: Status | None = None


@dataclass
class Snapshot:
    """Everything compliance needs about one org, loaded once."""

    people: list[PersonFacts]
    requirements: list[RequirementFacts]
    courses: dict[uuid.UUID, CourseFacts]
    completions: dict[tuple[uuid.UUID, uuid.UUID], list[CompletionFact]]
    exemptions: set[tuple[uuid.UUID, uuid.UUID]]
    policies: list[tuple[Policy, PolicyVersion]]
    acknowledgments: dict[tuple[uuid.UUID, uuid.UUID], datetime] = field(default_factory=dict)


async def load_snapshot(session: AsyncSession, org_id: uuid.UUID) -> Snapshot:
    # Core columns, not ORM entities: plain rows are several times faster to load.
    columns = [Person.__table__.c[name] for name in PERSON_COLUMNS]
    people = [
        PersonFacts(*row)
        for row in (await session.execute(select(*columns).where(Person.org_id == org_id))).all()
    ]
    requirements = [
        RequirementFacts.of(requirement)
        for requirement in (
            await session.scalars(
                select(Requirement)
                .where(Requirement.org_id == org_id, Requirement.active.is_(True))
                .order_by(Requirement.created_at, Requirement.id)
            )
        ).all()
    ]
    course_ids = {r.course_id for r in requirements}
    courses: dict[uuid.UUID, CourseFacts] = {}
    completions: dict[tuple[uuid.UUID, uuid.UUID], list[CompletionFact]] = defaultdict(list)
    if course_ids:
        for course in await session.scalars(
            select(Course).where(Course.org_id == org_id, Course.id.in_(course_ids))
        ):
            courses[course.id] = CourseFacts.of(course)
        table = Completion.__table__.c
        rows = await session.execute(
            select(
                table.person_id, table.course_id, table.completed_at, table.duration_minutes
            ).where(table.org_id == org_id, table.course_id.in_(course_ids))
        )
        for person_id, course_id, completed_at, minutes in rows.all():
            completions[(person_id, course_id)].append(
                CompletionFact(person_id, course_id, completed_at, minutes)
            )
    exemptions = {
        (person_id, requirement_id)
        for person_id, requirement_id in (
            await session.execute(
                select(Exemption.person_id, Exemption.requirement_id).where(
                    Exemption.org_id == org_id
                )
            )
        ).all()
    }
    policies = [
        (policy, version)
        for policy, version in (
            await session.execute(
                select(Policy, PolicyVersion)
                .join(
                    PolicyVersion,
                    (PolicyVersion.policy_id == Policy.id)
                    & (PolicyVersion.number == Policy.current_version),
                )
                .where(Policy.org_id == org_id, Policy.active.is_(True))
                .order_by(Policy.created_at, Policy.id)
            )
        ).all()
    ]
    acknowledgments: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}
    if policies:
        version_ids = [version.id for _, version in policies]
        for person_id, version_id, at in (
            await session.execute(
                select(
                    Acknowledgment.person_id,
                    Acknowledgment.version_id,
                    Acknowledgment.acknowledged_at,
                ).where(Acknowledgment.org_id == org_id, Acknowledgment.version_id.in_(version_ids))
            )
        ).all():
            acknowledgments[(person_id, version_id)] = at
    return Snapshot(
        people, requirements, courses, dict(completions), exemptions, policies, acknowledgments
    )


def evaluate(snapshot: Snapshot, person: PersonLike, now: datetime) -> PersonCompliance:
    items: list[Item] = []
    for requirement in snapshot.requirements:
        course = snapshot.courses.get(requirement.course_id)
        if course is None:
            continue
        if not applies(requirement, person):
            continue
        items.append(
            course_item(
                requirement,
                course,
                person,
                snapshot.completions.get((person.id, course.id), []),
                exempt=(person.id, requirement.id) in snapshot.exemptions,
                now=now,
            )
        )
    if person.active:
        for policy, version in snapshot.policies:
            items.append(
                policy_item(
                    policy,
                    version,
                    person,
                    snapshot.acknowledgments.get((person.id, version.id)),
                    now=now,
                )
            )
    return PersonCompliance(person, overall(items), items)


def visible_people(principal: Principal, people: list[PersonFacts]) -> list[PersonFacts]:
    """Trainers, admins and auditors see everyone; a person sees themself and everyone below
    them in the reporting lines."""
    if reads_everything(principal):
        return people
    me = principal.person_id
    if me is None:
        return []
    allowed = subtree(people, me) | {me}
    return [person for person in people if person.id in allowed]


def _order_key(person: PersonLike) -> tuple[int, str, str]:
    return (0 if person.is_leadership else 1, person.created_at.isoformat(), str(person.id))


def encode_cursor(key: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str, str]:
    try:
        rank, created, ident = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        return int(rank), str(created), str(uuid.UUID(ident))
    except (ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid.") from exc


def _candidates(snapshot: Snapshot, principal: Principal, filters: Filters) -> list[PersonFacts]:
    """The active people the caller may see that match the filters, in page order."""
    people = [p for p in visible_people(principal, snapshot.people) if p.active]
    if filters.team is not None:
        team = subtree(snapshot.people, filters.team)
        people = [p for p in people if p.id in team]
    if filters.role is not None:
        people = [p for p in people if filters.role in (p.roles or [])]
    if filters.location is not None:
        wanted = filters.location.upper()
        people = [p for p in people if (p.location or "").upper() == wanted]
    people.sort(key=_order_key)
    return people


def _matching(
    snapshot: Snapshot, principal: Principal, filters: Filters, now: datetime
) -> list[PersonCompliance]:
    results = [
        evaluate(snapshot, person, now) for person in _candidates(snapshot, principal, filters)
    ]
    if filters.status is not None:
        wanted_status = filters.status
        results = [
            r
            for r in results
            if any(item.status == wanted_status for item in r.items)
            or (not r.items and wanted_status == Status.COMPLIANT)
        ]
    return results


async def compliance_page(
    session: AsyncSession,
    principal: Principal,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> tuple[list[PersonCompliance], str | None]:
    snapshot = await load_snapshot(session, org_of(principal))
    after = decode_cursor(cursor) if cursor else None
    if filters.status is None:
        # Without a status filter the order is known before evaluating: evaluate one page.
        people = _candidates(snapshot, principal, filters)
        if after is not None:
            people = [p for p in people if _order_key(p) > after]
        page = [evaluate(snapshot, person, now) for person in people[:limit]]
        next_cursor = encode_cursor(_order_key(page[-1].person)) if len(people) > limit else None
        return page, next_cursor
    results = _matching(snapshot, principal, filters, now)
    if after is not None:
        results = [r for r in results if _order_key(r.person) > after]
    page = results[:limit]
    next_cursor = encode_cursor(_order_key(page[-1].person)) if len(results) > limit else None
    return page, next_cursor


async def compliance_all(
    session: AsyncSession, principal: Principal, filters: Filters, *, now: datetime
) -> list[PersonCompliance]:
    snapshot = await load_snapshot(session, org_of(principal))
    return _matching(snapshot, principal, filters, now)


@dataclass
class Group:
    key: str
    label: str
    people: int = 0
    people_compliant: int = 0
    items: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Status})


def summarise(
    results: Iterable[PersonCompliance], names: dict[uuid.UUID, str]
) -> dict[str, list[Group]]:
    """Roll-ups by org, role, location and team (a manager's direct reports)."""
    groups: dict[str, dict[str, Group]] = {"org": {}, "role": {}, "location": {}, "team": {}}

    def add(dimension: str, key: str, label: str, result: PersonCompliance) -> None:
        group = groups[dimension].get(key)
        if group is None:
            group = groups[dimension][key] = Group(key, label)
        group.people += 1
        if result.status in (Status.COMPLIANT, Status.EXEMPT):
            group.people_compliant += 1
        for item in result.items:
            group.items[item.status] += 1

    for result in results:
        person = result.person
        add("org", "org", "Organisation", result)
        for role in sorted(set(person.roles or [])):
            add("role", role, role, result)
        location = (person.location or "").upper()
        add("location", location or "unknown", location or "Unknown", result)
        if person.manager_id is not None:
            manager = str(person.manager_id)
            add("team", manager, names.get(person.manager_id, manager), result)
        else:
            add("team", "none", "No manager", result)
    return {
        dimension: sorted(found.values(), key=lambda g: g.key)
        for dimension, found in groups.items()
    }


async def compliance_summary(
    session: AsyncSession, principal: Principal, *, now: datetime
) -> dict[str, list[Group]]:
    snapshot = await load_snapshot(session, org_of(principal))
    results = _matching(snapshot, principal, Filters(), now)
    names = {person.id: person.name or person.email for person in snapshot.people}
    return summarise(results, names)
