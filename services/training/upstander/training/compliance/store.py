"""Keep `compliance_items` current: the engine's conclusions minus the comparison with *now*.

Every change that can alter a conclusion calls `refresh_items` in its own transaction with
the narrowest scope it knows (a person, a requirement, a person and a course, a policy...).
The scope is recomputed with the engine's own functions and written back as a diff, so the
stored rows are exactly what the engine would say; only `status_case` (the SQL that compares
them with the clock) is new, and a test pins it to the engine on both backends.
`rebuild_compliance` recomputes an organisation from scratch (migrations, repair, bulk loads).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from upstander.kit.db import UTCDateTime
from upstander.training.compliance.engine import (
    PERSON_COLUMNS,
    CompletionFact,
    CourseFacts,
    PersonFacts,
    RequirementFacts,
    Status,
    applies,
    course_item,
    policy_item,
)
from upstander.training.models import (
    Acknowledgment,
    Completion,
    ComplianceItem,
    Course,
    Exemption,
    Person,
    Policy,
    PolicyVersion,
    Requirement,
)

# Above this many ids a scope is loaded org-wide and narrowed in Python: long IN lists are
# slower than a scan of one org, and drivers cap the number of bound parameters.
IN_LIST_LIMIT = 500
# Rows per DELETE ... WHERE id IN (...).
DELETE_CHUNK = 500

Key = tuple[str, uuid.UUID, uuid.UUID]  # ("course", person, requirement) | ("policy", ...)
STORED = (
    "course_id",
    "policy_version_id",
    "policy_version",
    "due_at",
    "completed_at",
    "valid_until",
    "exempt",
)


# ----------------------------------------------------------------------------- reading


def status_case(now: datetime, *, outer: bool = False) -> ColumnElement[Any]:
    """The status of a stored item at `now`, as the engine decides it: exempt; a counting
    completion that has not lapsed (compliant) or has (expired); else due before the deadline
    and overdue from it. `outer`: the items are outer-joined, so a missing row is NULL, not
    overdue."""
    item = ComplianceItem
    at = literal(now, UTCDateTime())
    whens: list[tuple[ColumnElement[bool], str | None]] = []
    if outer:
        whens.append((item.id.is_(None), None))
    whens += [
        (item.exempt.is_(True), Status.EXEMPT.value),
        (
            and_(
                item.completed_at.is_not(None),
                or_(item.valid_until.is_(None), item.valid_until > at),
            ),
            Status.COMPLIANT.value,
        ),
        (item.completed_at.is_not(None), Status.EXPIRED.value),
        (item.due_at > at, Status.DUE.value),
    ]
    return case(*whens, else_=Status.OVERDUE.value)


def status_is(status: Status, now: datetime) -> ColumnElement[bool]:
    """`status_case(now) == status` as a plain predicate (the same branches, in the same
    order), which a planner can check against an index without evaluating the CASE."""
    item = ComplianceItem
    at = literal(now, UTCDateTime())
    if status == Status.EXEMPT:
        return item.exempt.is_(True)
    done = and_(item.exempt.is_not(True), item.completed_at.is_not(None))
    pending = and_(item.exempt.is_not(True), item.completed_at.is_(None))
    if status == Status.COMPLIANT:
        return and_(done, or_(item.valid_until.is_(None), item.valid_until > at))
    if status == Status.EXPIRED:
        return and_(done, item.valid_until <= at)
    if status == Status.DUE:
        return and_(pending, item.due_at > at)
    return and_(pending, or_(item.due_at.is_(None), item.due_at <= at))


# ----------------------------------------------------------------------------- writing


def _narrow(
    column: InstrumentedAttribute[Any], ids: Collection[uuid.UUID] | None
) -> list[ColumnElement[bool]]:
    """`column IN ids` for a small scope; nothing (load the org, filter later) otherwise."""
    if ids is None or len(ids) > IN_LIST_LIMIT:
        return []
    return [column.in_(list(ids))]


async def _people(
    session: AsyncSession, org_id: uuid.UUID, ids: set[uuid.UUID] | None
) -> list[PersonFacts]:
    """The people in scope, locked (PostgreSQL) in id order: a concurrent change to the same
    people waits, then reads what this one committed, so the last writer never writes a
    conclusion drawn from a stale read."""
    columns = [Person.__table__.c[name] for name in PERSON_COLUMNS]
    statement = (
        select(*columns)
        .where(Person.org_id == org_id, *_narrow(Person.id, ids))
        .order_by(Person.id)
        .with_for_update()
    )
    people = [PersonFacts(*row) for row in (await session.execute(statement)).all()]
    return people if ids is None else [person for person in people if person.id in ids]


async def refresh_items(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    people: Iterable[uuid.UUID | None] | None = None,
    requirements: Iterable[uuid.UUID] | None = (),
    courses: Iterable[uuid.UUID] = (),
    policies: Iterable[uuid.UUID] | None = (),
) -> None:
    """Recompute the stored items of `people` (None: everyone in the org) for `requirements`
    and the requirements of `courses` (None: every requirement) and for `policies` (None:
    every policy), and write the difference. The caller has flushed its change."""
    person_ids = None if people is None else {p for p in people if p is not None}
    if person_ids is not None and not person_ids:
        return
    scoped_people = await _people(session, org_id, person_ids)

    requirement_ids = None if requirements is None else set(requirements)
    course_ids = set(courses)
    if requirement_ids is not None and course_ids:
        requirement_ids |= set(
            (
                await session.scalars(
                    select(Requirement.id).where(
                        Requirement.org_id == org_id, Requirement.course_id.in_(course_ids)
                    )
                )
            ).all()
        )
    policy_ids = None if policies is None else set(policies)
    if requirement_ids == set() and policy_ids == set():
        return

    desired: dict[Key, dict[str, Any]] = {}
    if requirement_ids is None or requirement_ids:
        desired.update(
            await _course_items(session, org_id, scoped_people, person_ids, requirement_ids)
        )
    if policy_ids is None or policy_ids:
        desired.update(await _policy_items(session, org_id, scoped_people, person_ids, policy_ids))

    # What is stored for the same scope (retired requirements and leavers included, so their
    # rows go).
    item = ComplianceItem
    kinds: list[ColumnElement[bool]] = []
    if requirement_ids is None:
        kinds.append(item.requirement_id.is_not(None))
    elif requirement_ids:
        kinds.append(item.requirement_id.in_(list(requirement_ids)))
    if policy_ids is None:
        kinds.append(item.policy_id.is_not(None))
    elif policy_ids:
        kinds.append(item.policy_id.in_(list(policy_ids)))
    stored = await session.execute(
        select(item.id, item.person_id, item.requirement_id, item.policy_id, *_stored_columns())
        .where(item.org_id == org_id, *_narrow(item.person_id, person_ids))
        .where(or_(*kinds))
    )
    existing: dict[Key, tuple[uuid.UUID, tuple[Any, ...]]] = {}
    for row in stored.all():
        if person_ids is not None and row.person_id not in person_ids:
            continue
        key: Key = (
            ("course", row.person_id, row.requirement_id)
            if row.requirement_id is not None
            else ("policy", row.person_id, row.policy_id)
        )
        existing[key] = (row.id, tuple(row[4:]))
    await _write(session, org_id, desired, existing)


def _stored_columns() -> list[InstrumentedAttribute[Any]]:
    return [getattr(ComplianceItem, name) for name in STORED]


async def _course_items(
    session: AsyncSession,
    org_id: uuid.UUID,
    people: Sequence[PersonFacts],
    person_ids: set[uuid.UUID] | None,
    requirement_ids: set[uuid.UUID] | None,
) -> dict[Key, dict[str, Any]]:
    statement = select(Requirement).where(
        Requirement.org_id == org_id, Requirement.active.is_(True)
    )
    if requirement_ids is not None:
        statement = statement.where(Requirement.id.in_(list(requirement_ids)))
    rules = [RequirementFacts.of(r) for r in (await session.scalars(statement)).all()]
    if not rules:
        return {}
    course_ids = {rule.course_id for rule in rules}
    courses = {
        course.id: CourseFacts.of(course)
        for course in await session.scalars(
            select(Course).where(Course.org_id == org_id, Course.id.in_(course_ids))
        )
    }
    done = Completion.__table__.c
    completions: dict[tuple[uuid.UUID, uuid.UUID], list[CompletionFact]] = defaultdict(list)
    for person_id, course_id, completed_at, minutes in (
        await session.execute(
            select(done.person_id, done.course_id, done.completed_at, done.duration_minutes).where(
                done.org_id == org_id,
                done.course_id.in_(course_ids),
                *_narrow(Completion.person_id, person_ids),
            )
        )
    ).all():
        completions[(person_id, course_id)].append(
            CompletionFact(person_id, course_id, completed_at, minutes)
        )
    exemptions = set(
        (
            await session.execute(
                select(Exemption.person_id, Exemption.requirement_id).where(
                    Exemption.org_id == org_id,
                    Exemption.requirement_id.in_([rule.id for rule in rules]),
                    *_narrow(Exemption.person_id, person_ids),
                )
            )
        ).all()
    )
    found: dict[Key, dict[str, Any]] = {}
    for person in people:
        if not person.active:
            continue
        for rule in rules:
            course = courses.get(rule.course_id)
            if course is None or not applies(rule, person):
                continue
            # The engine decides at any moment; what it says apart from `status` does not
            # depend on the moment, and `status` is left to `status_case`.
            item = course_item(
                rule,
                course,
                person,
                completions.get((person.id, course.id), ()),
                exempt=(person.id, rule.id) in exemptions,
                now=datetime.min.replace(tzinfo=UTC),
            )
            found[("course", person.id, rule.id)] = {
                "person_id": person.id,
                "kind": "course",
                "requirement_id": rule.id,
                "policy_id": None,
                "course_id": course.id,
                "policy_version_id": None,
                "policy_version": None,
                "due_at": item.due_at,
                "completed_at": item.completed_at,
                "valid_until": item.expires_at,
                "exempt": item.status == Status.EXEMPT,
            }
    return found


async def _policy_items(
    session: AsyncSession,
    org_id: uuid.UUID,
    people: Sequence[PersonFacts],
    person_ids: set[uuid.UUID] | None,
    policy_ids: set[uuid.UUID] | None,
) -> dict[Key, dict[str, Any]]:
    statement = (
        select(Policy, PolicyVersion)
        .join(
            PolicyVersion,
            (PolicyVersion.policy_id == Policy.id)
            & (PolicyVersion.number == Policy.current_version),
        )
        .where(Policy.org_id == org_id, Policy.active.is_(True))
    )
    if policy_ids is not None:
        statement = statement.where(Policy.id.in_(list(policy_ids)))
    published = [(policy, version) for policy, version in (await session.execute(statement)).all()]
    if not published:
        return {}
    acknowledged: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {
        (person_id, version_id): at
        for person_id, version_id, at in (
            await session.execute(
                select(
                    Acknowledgment.person_id,
                    Acknowledgment.version_id,
                    Acknowledgment.acknowledged_at,
                ).where(
                    Acknowledgment.org_id == org_id,
                    Acknowledgment.version_id.in_([version.id for _, version in published]),
                    *_narrow(Acknowledgment.person_id, person_ids),
                )
            )
        ).all()
    }
    found: dict[Key, dict[str, Any]] = {}
    moment = datetime.min.replace(tzinfo=UTC)
    for person in people:
        if not person.active:
            continue
        for policy, version in published:
            item = policy_item(
                policy, version, person, acknowledged.get((person.id, version.id)), now=moment
            )
            found[("policy", person.id, policy.id)] = {
                "person_id": person.id,
                "kind": "policy",
                "requirement_id": None,
                "policy_id": policy.id,
                "course_id": None,
                "policy_version_id": version.id,
                "policy_version": version.number,
                "due_at": item.due_at,
                "completed_at": item.completed_at,
                "valid_until": None,
                "exempt": False,
            }
    return found


async def _write(
    session: AsyncSession,
    org_id: uuid.UUID,
    desired: dict[Key, dict[str, Any]],
    existing: dict[Key, tuple[uuid.UUID, tuple[Any, ...]]],
) -> None:
    now = datetime.now(UTC)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, values in desired.items():
        found = existing.get(key)
        if found is None:
            inserts.append(
                {
                    **values,
                    "id": uuid.uuid4(),
                    "org_id": org_id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        row_id, stored = found
        if stored != tuple(values[name] for name in STORED):
            updates.append(
                {"id": row_id, "updated_at": now, **{name: values[name] for name in STORED}}
            )
    # Core statements, not ORM bulk ones: the ORM splits an executemany wherever the set of
    # non-null values changes (course rows, then a policy row...), which is a round trip each.
    table = cast(Table, ComplianceItem.__table__)
    gone = [row_id for key, (row_id, _) in existing.items() if key not in desired]
    for start in range(0, len(gone), DELETE_CHUNK):
        await session.execute(
            delete(table).where(table.c.id.in_(gone[start : start + DELETE_CHUNK]))
        )
    if updates:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in (*STORED, "updated_at")}),
            [{**values, "row_id": values.pop("id")} for values in updates],
        )
    if inserts:
        await session.execute(insert(table), inserts)


async def rebuild_compliance(session: AsyncSession, org_id: uuid.UUID) -> None:
    """Recompute every stored item of an organisation (after a migration, a bulk load that
    bypassed the services, or to repair)."""
    await refresh_items(session, org_id, people=None, requirements=None, policies=None)


async def rebuild_all(session: AsyncSession) -> int:
    """`rebuild_compliance` for every organisation with people; returns how many."""
    org_ids = (await session.scalars(select(Person.org_id).distinct())).all()
    for org_id in org_ids:
        await rebuild_compliance(session, org_id)
    return len(org_ids)
