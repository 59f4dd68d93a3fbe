"""The compliance engine applied to a whole organisation in memory: load everything, evaluate
everyone. The service no longer answers requests this way (it reads `compliance_items` with
SQL); this is the reference the stored statuses and roll-ups are tested against, and it states
the filters' meaning in plain Python."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.auth import Principal
from upstander.training.access import reads_everything
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
from upstander.training.compliance.service import Filters, Group, PersonCompliance
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


def order_key(person: PersonLike) -> tuple[int, datetime, str]:
    """Page order: leadership first, then by when they joined the projection, then id."""
    return (0 if person.is_leadership else 1, person.created_at, str(person.id))


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


def candidates(snapshot: Snapshot, principal: Principal, filters: Filters) -> list[PersonFacts]:
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
    people.sort(key=order_key)
    return people


def matching(
    snapshot: Snapshot, principal: Principal, filters: Filters, now: datetime
) -> list[PersonCompliance]:
    results = [
        evaluate(snapshot, person, now) for person in candidates(snapshot, principal, filters)
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
