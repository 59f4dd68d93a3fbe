"""The compliance rules as pure functions of people, rules, records and a moment in time.

Per person × required course: `exempt` (excused), `compliant` (a qualifying completion that
has not lapsed), `expired` (the last qualifying completion lapsed: recurrence or course
validity), `due` (never done, deadline ahead), `overdue` (never done, deadline passed).
Per person × published policy: `compliant` (current version acknowledged), `due`, `overdue`.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeAlias

from upstander.training.models import Course, Person, Policy, PolicyVersion, Requirement


class Status(StrEnum):
    COMPLIANT = "compliant"
    DUE = "due"
    OVERDUE = "overdue"
    EXPIRED = "expired"
    EXEMPT = "exempt"


# Worst first wins a person's overall status.
SEVERITY = {
    Status.EXEMPT: 0,
    Status.COMPLIANT: 1,
    Status.DUE: 2,
    Status.EXPIRED: 3,
    Status.OVERDUE: 4,
}


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What compliance reads of a person: loaded as plain rows, not ORM objects, because an
    organisation of ten thousand hydrates slowly as ORM instances."""

    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    name: str
    roles: list[str]
    manager_id: uuid.UUID | None
    is_leadership: bool
    is_supervisor: bool
    supervisor_since: datetime | None
    start_date: date | None
    location: str | None
    location_since: datetime | None
    active: bool
    created_at: datetime


PERSON_COLUMNS = tuple(PersonFacts.__dataclass_fields__)

PersonLike: TypeAlias = Person | PersonFacts


@dataclass(frozen=True, slots=True)
class RequirementFacts:
    """A requirement's rule as plain values: evaluated once per person, so tens of thousands
    of times for a large organisation, where ORM attribute access adds up."""

    id: uuid.UUID
    name: str
    course_id: uuid.UUID
    audience: str
    location: str | None
    due_within_days: int
    recurrence_months: int | None
    min_minutes: int | None
    interactive_required: bool
    effective_from: datetime

    @classmethod
    def of(cls, requirement: RequirementLike) -> RequirementFacts:
        return cls(*(getattr(requirement, name) for name in cls.__dataclass_fields__))


@dataclass(frozen=True, slots=True)
class CourseFacts:
    id: uuid.UUID
    duration_minutes: int
    interactive: bool
    validity_months: int | None

    @classmethod
    def of(cls, course: Course) -> CourseFacts:
        return cls(*(getattr(course, name) for name in cls.__dataclass_fields__))


RequirementLike: TypeAlias = Requirement | RequirementFacts
CourseLike: TypeAlias = Course | CourseFacts


@dataclass(frozen=True, slots=True)
class CompletionFact:
    person_id: uuid.UUID
    course_id: uuid.UUID
    completed_at: datetime
    duration_minutes: int | None


@dataclass(frozen=True)
class Item:
    kind: str  # "course" | "policy"
    title: str
    status: Status
    due_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    requirement_id: uuid.UUID | None = None
    course_id: uuid.UUID | None = None
    policy_id: uuid.UUID | None = None
    policy_version: int | None = None


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def joined_at(person: PersonLike) -> datetime:
    if person.start_date is not None:
        return datetime.combine(person.start_date, time(0), tzinfo=UTC)
    return person.created_at


def applies(requirement: RequirementLike, person: PersonLike) -> bool:
    if not person.active:
        return False
    location = (person.location or "").upper()
    if requirement.location and requirement.location.upper() != location:
        return False
    audience = requirement.audience
    if audience == "everyone":
        return True
    if audience == "supervisors":
        return person.is_supervisor
    if audience == "non_supervisors":
        return not person.is_supervisor
    if audience == "leadership":
        return person.is_leadership
    if audience.startswith("role:"):
        return audience.removeprefix("role:") in (person.roles or [])
    if audience.startswith("location:"):
        return audience.removeprefix("location:").upper() == location
    return False


def anchor(requirement: RequirementLike, person: PersonLike) -> datetime:
    """When the person's clock for this requirement started: hire, promotion or move, but
    never before the requirement took effect."""
    moments = [joined_at(person), requirement.effective_from]
    if requirement.audience == "supervisors" and person.supervisor_since is not None:
        moments.append(person.supervisor_since)
    located = requirement.location or requirement.audience.startswith("location:")
    if located and person.location_since is not None:
        moments.append(person.location_since)
    return max(moments)


def course_item(
    requirement: RequirementLike,
    course: CourseLike,
    person: PersonLike,
    completions: Sequence[CompletionFact],
    *,
    exempt: bool,
    now: datetime,
) -> Item:
    def item(
        status: Status, due: datetime | None, done: datetime | None, expires: datetime | None
    ) -> Item:
        return Item(
            "course",
            requirement.name,
            status,
            due,
            done,
            expires,
            requirement_id=requirement.id,
            course_id=course.id,
        )

    if exempt:
        return item(Status.EXEMPT, None, None, None)
    latest: datetime | None = None
    if not (requirement.interactive_required and not course.interactive):
        for completion in completions:
            minutes = completion.duration_minutes
            if minutes is None:
                minutes = course.duration_minutes
            if requirement.min_minutes is not None and minutes < requirement.min_minutes:
                continue
            if latest is None or completion.completed_at > latest:
                latest = completion.completed_at
    if latest is not None:
        months = requirement.recurrence_months or course.validity_months
        expires = add_months(latest, months) if months else None
        if expires is None or now < expires:
            return item(Status.COMPLIANT, expires, latest, expires)
        return item(Status.EXPIRED, expires, latest, expires)
    due = anchor(requirement, person) + timedelta(days=requirement.due_within_days)
    return item(Status.DUE if now < due else Status.OVERDUE, due, None, None)


def policy_item(
    policy: Policy,
    version: PolicyVersion,
    person: PersonLike,
    acknowledged_at: datetime | None,
    *,
    now: datetime,
) -> Item:
    def item(status: Status, due: datetime, done: datetime | None) -> Item:
        return Item(
            "policy",
            policy.title,
            status,
            due,
            done,
            None,
            policy_id=policy.id,
            policy_version=version.number,
        )

    due = max(version.published_at, joined_at(person)) + timedelta(days=version.due_days)
    if acknowledged_at is not None:
        return item(Status.COMPLIANT, due, acknowledged_at)
    return item(Status.DUE if now < due else Status.OVERDUE, due, None)


def overall(items: Iterable[Item]) -> Status:
    worst = Status.COMPLIANT
    for entry in items:
        if entry.status != Status.EXEMPT and SEVERITY[entry.status] > SEVERITY[worst]:
            worst = entry.status
    return worst
