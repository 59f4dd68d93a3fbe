"""Compliance for the people a caller may see, read from `compliance_items` with SQL.

The stored rows hold what does not depend on the time (`compliance.store`); the status is a
CASE on the clock's *now* (`store.status_case`). Visibility, filters and the page order are
WHERE clauses and a keyset over (leadership first, created_at, id) on `people`; roll-ups are
one GROUP BY per dimension over a per-person count. `compliance.reference` is the same view
computed in Python by the engine, which the tests hold this to."""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from upstander.kit.auth import Principal
from upstander.kit.db import UTCDateTime
from upstander.kit.pagination import decode_ranked_cursor
from upstander.training.access import org_of, reads_everything
from upstander.training.compliance.engine import (
    PERSON_COLUMNS,
    Item,
    PersonFacts,
    PersonLike,
    Status,
    overall,
)
from upstander.training.compliance.store import IN_LIST_LIMIT, status_case, status_is
from upstander.training.models import ComplianceItem, Person, Policy, PolicyVersion, Requirement

BAD = (Status.DUE, Status.EXPIRED, Status.OVERDUE)


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
class Group:
    key: str
    label: str
    people: int = 0
    people_compliant: int = 0
    items: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Status})


# ----------------------------------------------------------------------------- who


def _subtree(org_id: uuid.UUID, root: uuid.UUID, name: str) -> CTE:
    """Everyone below `root` in the reporting lines, not `root` itself (as `people.subtree`).
    UNION, not UNION ALL: a cycle in the reporting lines adds nothing new, so it ends."""
    top = (
        select(Person.id)
        .where(Person.org_id == org_id, Person.manager_id == root, Person.id != root)
        .cte(name, recursive=True)
    )
    below = aliased(Person, name=f"{name}_person")
    return top.union(
        select(below.id).where(
            below.org_id == org_id, below.manager_id == top.c.id, below.id != root
        )
    )


def _visible(principal: Principal, org_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """Trainers, admins and auditors see everyone; a person sees themself and everyone below
    them in the reporting lines."""
    if reads_everything(principal):
        return []
    me = principal.person_id
    if me is None:
        return [false()]
    tree = _subtree(org_id, me, "visible")
    return [or_(Person.id == me, Person.id.in_(select(tree.c.id)))]


def _roles(dialect: str, roles: Any = None) -> Any:
    """The elements of `roles` (a JSON list, `people.roles` by default) as rows with a
    `value` column."""
    roles = Person.roles if roles is None else roles
    if dialect == "sqlite":
        return func.json_each(roles).table_valued("value")
    return func.json_array_elements_text(roles).table_valued("value")


def _items_of_person() -> ColumnElement[bool]:
    return and_(ComplianceItem.org_id == Person.org_id, ComplianceItem.person_id == Person.id)


def _people_where(
    principal: Principal, filters: Filters, *, dialect: str, now: datetime
) -> list[ColumnElement[bool]]:
    org_id = org_of(principal)
    where = [Person.org_id == org_id, Person.active.is_(True), *_visible(principal, org_id)]
    if filters.team is not None:
        team = _subtree(org_id, filters.team, "team")
        where.append(Person.id.in_(select(team.c.id)))
    if filters.role is not None:
        roles = _roles(dialect)
        where.append(exists(select(true()).select_from(roles).where(roles.c.value == filters.role)))
    if filters.location is not None:
        where.append(func.upper(func.coalesce(Person.location, "")) == filters.location.upper())
    if filters.status is not None:
        # At least one item in that status; with none at all, a person is compliant.
        # A plain predicate, not the CASE: checked on the covering status index.
        with_status: ColumnElement[bool] = exists().where(
            _items_of_person(), status_is(filters.status, now)
        )
        if filters.status == Status.COMPLIANT:
            # One correlated subquery (1: a compliant item, 0: items but none compliant,
            # NULL: no items), not `EXISTS ... OR NOT EXISTS ...`, which PostgreSQL turns
            # into two hashed subplans over every item of the org instead of stopping early.
            any_compliant = (
                select(func.max(case((status_is(Status.COMPLIANT, now), 1), else_=0)))
                .where(_items_of_person())
                .scalar_subquery()
            )
            with_status = func.coalesce(any_compliant, 1) == 1
        where.append(with_status)
    return where


# ----------------------------------------------------------------------------- page order


def _rank() -> ColumnElement[int]:
    return case((Person.is_leadership.is_(True), 0), else_=1)


def _order_key(person: PersonLike) -> tuple[int, str, str]:
    return (0 if person.is_leadership else 1, person.created_at.isoformat(), str(person.id))


def encode_cursor(key: tuple[int, str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, datetime, uuid.UUID]:
    # The kit's decoder; the rank is 0 (leadership) or 1 (everyone else).
    return decode_ranked_cursor(cursor, (0, 1))


def _parts(
    cursor: tuple[int, datetime, uuid.UUID] | None,
) -> list[list[ColumnElement[bool]]]:
    """The page order as two index ranges, leadership (rank 0) then everyone else (rank 1),
    each read on (org_id, is_leadership, created_at, id) and each able to stop as soon as it
    has enough people; the cursor skips the parts before it and starts its own part after
    it."""
    parts: list[list[ColumnElement[bool]]] = []
    for rank, leadership in ((0, Person.is_leadership == true()), (1, _not_leadership())):
        if cursor is None or cursor[0] < rank:
            parts.append([leadership])
        elif cursor[0] == rank:
            _, created, ident = cursor
            parts.append(
                [
                    leadership,
                    tuple_(Person.created_at, Person.id)
                    > tuple_(literal(created, UTCDateTime()), literal(ident, Uuid())),
                ]
            )
    return parts


def _not_leadership() -> ColumnElement[bool]:
    # `is_leadership` is NOT NULL, so this is `_rank() == 1`, and an index range.
    return Person.is_leadership == false()


def _part_statement(where: Sequence[ColumnElement[bool]]) -> Select[Any]:
    columns = [Person.__table__.c[name] for name in PERSON_COLUMNS]
    return (
        select(*columns)
        .where(*where)
        .order_by(Person.__table__.c.created_at, Person.__table__.c.id)
    )


def _people_statement(where: Sequence[ColumnElement[bool]]) -> Select[Any]:
    columns = [Person.__table__.c[name] for name in PERSON_COLUMNS]
    return (
        select(*columns)
        .where(*where)
        .order_by(_rank(), Person.__table__.c.created_at, Person.__table__.c.id)
    )


# ----------------------------------------------------------------------------- items


async def _items(
    session: AsyncSession, org_id: uuid.UUID, people: Sequence[PersonFacts], now: datetime
) -> dict[uuid.UUID, list[Item]]:
    """The people's items with their status at `now`, in the engine's order: requirements,
    then policies, each by creation."""
    if not people:
        return {}
    wanted = {person.id for person in people}
    titles: dict[uuid.UUID, tuple[int, str]] = {}
    rules = await session.execute(
        select(Requirement.id, Requirement.name)
        .where(Requirement.org_id == org_id, Requirement.active.is_(True))
        .order_by(Requirement.created_at, Requirement.id)
    )
    for position, (rule_id, name) in enumerate(rules.all()):
        titles[rule_id] = (position, name)
    policies = await session.execute(
        select(Policy.id, Policy.title)
        .where(Policy.org_id == org_id, Policy.active.is_(True))
        .order_by(Policy.created_at, Policy.id)
    )
    for position, (policy_id, title) in enumerate(policies.all(), start=len(titles)):
        titles[policy_id] = (position, title)

    item = ComplianceItem
    statement = select(
        item.person_id,
        item.kind,
        item.requirement_id,
        item.course_id,
        item.policy_id,
        item.policy_version,
        item.due_at,
        item.completed_at,
        item.valid_until,
        status_case(now),
    ).where(item.org_id == org_id)
    if len(wanted) <= IN_LIST_LIMIT:
        statement = statement.where(item.person_id.in_(list(wanted)))
    found: dict[uuid.UUID, list[tuple[int, Item]]] = defaultdict(list)
    for row in (await session.execute(statement)).all():
        (person_id, kind, rule_id, course_id, policy_id, version, due, done, until, status) = row
        if person_id not in wanted:
            continue
        subject = rule_id if rule_id is not None else policy_id
        position, title = titles.get(subject, (len(titles), ""))
        found[person_id].append(
            (
                position,
                Item(
                    kind,
                    title,
                    Status(status),
                    due,
                    done,
                    until,
                    requirement_id=rule_id,
                    course_id=course_id,
                    policy_id=policy_id,
                    policy_version=version,
                ),
            )
        )
    return {
        person_id: [entry for _, entry in sorted(entries, key=lambda e: e[0])]
        for person_id, entries in found.items()
    }


async def _results(
    session: AsyncSession, org_id: uuid.UUID, people: Sequence[PersonFacts], now: datetime
) -> list[PersonCompliance]:
    items = await _items(session, org_id, people, now)
    results = []
    for person in people:
        mine = items.get(person.id, [])
        results.append(PersonCompliance(person, overall(mine), mine))
    return results


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# ----------------------------------------------------------------------------- views


async def compliance_page(
    session: AsyncSession,
    principal: Principal,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None,
    now: datetime,
) -> tuple[list[PersonCompliance], str | None]:
    where = _people_where(principal, filters, dialect=_dialect(session), now=now)
    people: list[PersonFacts] = []
    for part in _parts(decode_cursor(cursor) if cursor else None):
        wanted = limit + 1 - len(people)
        if wanted <= 0:
            break
        rows = await session.execute(_part_statement([*where, *part]).limit(wanted))
        people += [PersonFacts(*row) for row in rows.all()]
    page = await _results(session, org_of(principal), people[:limit], now)
    next_cursor = encode_cursor(_order_key(page[-1].person)) if len(people) > limit else None
    return page, next_cursor


async def compliance_all(
    session: AsyncSession, principal: Principal, filters: Filters, *, now: datetime
) -> list[PersonCompliance]:
    where = _people_where(principal, filters, dialect=_dialect(session), now=now)
    people = [PersonFacts(*row) for row in (await session.execute(_people_statement(where))).all()]
    return await _results(session, org_of(principal), people, now)


async def organisation_compliance(
    session: AsyncSession, org_id: uuid.UUID, *, now: datetime
) -> list[PersonCompliance]:
    """Every active person of an organisation with their items (the reminder pass)."""
    where = [Person.org_id == org_id, Person.active.is_(True)]
    people = [PersonFacts(*row) for row in (await session.execute(_people_statement(where))).all()]
    return await _results(session, org_id, people, now)


async def current_versions(
    session: AsyncSession, org_id: uuid.UUID
) -> dict[tuple[uuid.UUID, int], uuid.UUID]:
    """(policy id, number) → version id of every active policy's current version."""
    rows = await session.execute(
        select(PolicyVersion.policy_id, PolicyVersion.number, PolicyVersion.id)
        .join(Policy, Policy.id == PolicyVersion.policy_id)
        .where(
            Policy.org_id == org_id,
            Policy.active.is_(True),
            PolicyVersion.number == Policy.current_version,
        )
    )
    return {(policy_id, number): version_id for policy_id, number, version_id in rows.all()}


# Per person, the five status counts packed in one integer (12 bits each), so the items are
# aggregated with a single CASE per row: evaluating five CASEs over every item costs more
# than the whole roll-up on SQLite. A person would need 4,096 items in one status to overflow.
COUNT_BITS = 12
COUNT_MASK = (1 << COUNT_BITS) - 1
ORDER = (Status.EXEMPT, Status.COMPLIANT, Status.EXPIRED, Status.DUE, Status.OVERDUE)


def _packed_status(now: datetime) -> ColumnElement[Any]:
    weights = {
        s.value: literal_column(str(1 << (COUNT_BITS * n)), BigInteger) for n, s in enumerate(ORDER)
    }
    item = ComplianceItem
    at = literal(now, UTCDateTime())
    return case(
        (item.exempt.is_(True), weights[Status.EXEMPT.value]),
        (
            and_(
                item.completed_at.is_not(None),
                or_(item.valid_until.is_(None), item.valid_until > at),
            ),
            weights[Status.COMPLIANT.value],
        ),
        (item.completed_at.is_not(None), weights[Status.EXPIRED.value]),
        (item.due_at > at, weights[Status.DUE.value]),
        else_=weights[Status.OVERDUE.value],
    )


def _per_person(principal: Principal, org_id: uuid.UUID, *, dialect: str, now: datetime) -> CTE:
    """One row per person the caller may see: what the roll-ups group by and their items'
    packed status counts (0 with no items). Materialised: computed once, read per dimension."""
    item = ComplianceItem
    if PER_PERSON_JOIN:
        counted = (
            select(item.person_id, cast(func.sum(_packed_status(now)), BigInteger).label("packed"))
            .where(item.org_id == org_id)
            .group_by(item.person_id)
            .subquery("counted")
        )
        packed: Any = counted.c.packed
    else:
        packed = (
            select(cast(func.sum(_packed_status(now)), BigInteger))
            .where(item.org_id == org_id, item.person_id == Person.id)
            .scalar_subquery()
        )
    statement = select(
        Person.id,
        Person.manager_id,
        Person.location,
        Person.roles,
        func.coalesce(packed, 0).label("packed"),
    ).where(*_people_where(principal, Filters(), dialect=dialect, now=now))
    if PER_PERSON_JOIN:
        statement = statement.select_from(Person).outerjoin(
            counted, counted.c.person_id == Person.id
        )
    return statement.cte("per_person").prefix_with("MATERIALIZED")


PER_PERSON_JOIN = True


def _sums(source: Any) -> list[ColumnElement[Any]]:
    """People, compliant people and items by status, summed over the rows of `source` (each
    with a person's `packed` counts)."""
    packed = source.c.packed
    # Nothing expired, due or overdue: no bit set from EXPIRED's field up.
    compliant = case((packed < (1 << (COUNT_BITS * ORDER.index(Status.EXPIRED))), 1), else_=0)
    return [
        func.count().label("people"),
        func.sum(compliant).label("people_compliant"),
        *(
            # PostgreSQL shifts a bigint by an integer (not a bigint): the shift is a literal.
            func.sum(
                packed.bitwise_rshift(literal_column(str(COUNT_BITS * n), Integer)).bitwise_and(
                    COUNT_MASK
                )
            ).label(s.value)
            for n, s in enumerate(ORDER)
        ),
    ]


async def compliance_summary(
    session: AsyncSession, principal: Principal, *, now: datetime
) -> dict[str, list[Group]]:
    """Roll-ups by org, role, location and team (a manager's direct reports), the engine's
    `summarise` in one statement: a materialised row per visible person (their items counted
    by status), summed per dimension in SQL, so only one row per group comes back. Locations
    are grouped as stored and merged here (case-insensitively, as Python does)."""
    org_id = org_of(principal)
    dialect = _dialect(session)
    people = _per_person(principal, org_id, dialect=dialect, now=now)
    if dialect == "postgresql":
        # PostgreSQL assumes 100 roles a person (a set-returning function's default), so the
        # plan looks costly enough to JIT-compile: ~70 ms of compiling for a ~70 ms query.
        # For this transaction only.
        await session.execute(text("SET LOCAL jit = off"))

    sums = _sums
    no_text = cast(null(), String)
    no_id = cast(null(), Uuid)
    org = select(literal("org"), no_text, no_id, no_text, no_text, *sums(people))
    location = select(
        literal("location"), people.c.location, no_id, no_text, no_text, *sums(people)
    ).group_by(people.c.location)
    # A role listed twice counts once: the (person, role) pairs are made distinct first.
    roles = _roles(dialect, people.c.roles)
    pairs = (
        select(
            people.c.id,
            roles.c.value.label("role"),
            people.c.packed,
        )
        .select_from(people)
        .join(roles, true())
        .distinct()
        .subquery("roles_of_people")
    )
    role = select(literal("role"), pairs.c.role, no_id, no_text, no_text, *sums(pairs)).group_by(
        pairs.c.role
    )
    teams = (
        select(people.c.manager_id, *sums(people)).group_by(people.c.manager_id).subquery("teams")
    )
    manager = aliased(Person, name="manager")
    team = (
        select(
            literal("team"),
            no_text,
            teams.c.manager_id,
            manager.name,
            manager.email,
            teams.c.people,
            teams.c.people_compliant,
            *(teams.c[s.value] for s in ORDER),
        )
        .select_from(teams)
        .outerjoin(manager, and_(manager.org_id == org_id, manager.id == teams.c.manager_id))
    )

    groups: dict[str, dict[str, Group]] = {d: {} for d in ("org", "role", "location", "team")}
    rows = await session.execute(union_all(org, location, role, team))
    for dimension, value, manager_id, name, email, total, compliant, *counts in rows.all():
        if dimension == "org":
            key, label = "org", "Organisation"
        elif dimension == "role":
            key = label = value
        elif dimension == "location":
            place = (value or "").upper()
            key, label = place or "unknown", place or "Unknown"
        elif manager_id is None:
            key, label = "none", "No manager"
        else:
            key = str(manager_id)
            label = (name or email) if email is not None else key
        group = groups[dimension].get(key)
        if group is None:
            group = groups[dimension][key] = Group(key, label)
        group.people += int(total)
        group.people_compliant += int(compliant or 0)
        for status, count in zip(ORDER, counts, strict=True):
            group.items[status.value] += int(count or 0)
    return {
        dimension: sorted(found.values(), key=lambda g: g.key)
        for dimension, found in groups.items()
    }
