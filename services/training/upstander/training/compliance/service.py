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
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from upstander.kit.auth import Principal
from upstander.kit.db import UTCDateTime
from upstander.kit.errors import BadRequest
from upstander.training.access import org_of, reads_everything
from upstander.training.compliance.engine import (
    PERSON_COLUMNS,
    Item,
    PersonFacts,
    PersonLike,
    Status,
    overall,
)
from upstander.training.compliance.store import IN_LIST_LIMIT, status_case
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


def _roles(dialect: str) -> Any:
    """The elements of `people.roles` (a JSON list) as rows with a `value` column."""
    if dialect == "sqlite":
        return func.json_each(Person.roles).table_valued("value")
    return func.json_array_elements_text(Person.roles).table_valued("value")


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
        with_status: ColumnElement[bool] = exists().where(
            _items_of_person(), status_case(now) == filters.status.value
        )
        if filters.status == Status.COMPLIANT:
            with_status = or_(with_status, ~exists().where(_items_of_person()))
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
    try:
        rank, created, ident = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        at = datetime.fromisoformat(str(created))
        if at.tzinfo is None:
            raise ValueError("naive time")
        return int(rank), at, uuid.UUID(str(ident))
    except (ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid.") from exc


def _after(cursor: tuple[int, datetime, uuid.UUID]) -> ColumnElement[bool]:
    rank, created, ident = cursor
    return or_(
        _rank() > rank,
        and_(
            _rank() == rank,
            or_(
                Person.created_at > created,
                and_(Person.created_at == created, Person.id > ident),
            ),
        ),
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
    if cursor:
        where.append(_after(decode_cursor(cursor)))
    rows = (await session.execute(_people_statement(where).limit(limit + 1))).all()
    people = [PersonFacts(*row) for row in rows]
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


def _unpack(packed: int) -> dict[str, int]:
    return {s.value: (packed >> (COUNT_BITS * n)) & COUNT_MASK for n, s in enumerate(ORDER)}


async def compliance_summary(
    session: AsyncSession, principal: Principal, *, now: datetime
) -> dict[str, list[Group]]:
    """Roll-ups by org, role, location and team (a manager's direct reports). One statement:
    the items grouped by person (one pass over the covering status index), joined to the
    people the caller may see; the four dimensions are then summed here, over one row per
    person (the engine's `summarise`, fed counts instead of items)."""
    org_id = org_of(principal)
    item = ComplianceItem
    per_person = (
        select(item.person_id, func.sum(_packed_status(now)).label("packed"))
        .where(item.org_id == org_id)
        .group_by(item.person_id)
        .subquery("per_person")
    )
    statement = (
        select(Person.manager_id, Person.location, Person.roles, per_person.c.packed)
        .select_from(Person)
        .outerjoin(per_person, per_person.c.person_id == Person.id)
        .where(*_people_where(principal, Filters(), dialect=_dialect(session), now=now))
    )
    # People with the same counts are tallied together, and each distinct count unpacked once.
    tallies: dict[str, dict[str, Counter[int]]] = {
        dimension: defaultdict(Counter) for dimension in ("org", "role", "location", "team")
    }
    managers: dict[str, uuid.UUID] = {}
    for manager_id, location, roles, packed in (await session.execute(statement)).all():
        packed = int(packed or 0)
        tallies["org"]["org"][packed] += 1
        for role in set(roles or ()):
            tallies["role"][role][packed] += 1
        place = (location or "").upper() or "unknown"
        tallies["location"][place][packed] += 1
        team = "none" if manager_id is None else str(manager_id)
        if manager_id is not None:
            managers[team] = manager_id
        tallies["team"][team][packed] += 1

    names: dict[uuid.UUID, str] = {}
    if managers:
        for person_id, name, email in (
            await session.execute(
                select(Person.id, Person.name, Person.email).where(
                    Person.org_id == org_id, Person.id.in_(list(set(managers.values())))
                )
            )
        ).all():
            names[person_id] = name or email

    def label(dimension: str, key: str) -> str:
        if dimension == "org":
            return "Organisation"
        if dimension == "location":
            return "Unknown" if key == "unknown" else key
        if dimension == "team":
            return "No manager" if key == "none" else names.get(managers[key], key)
        return key

    bad_from = COUNT_BITS * ORDER.index(Status.EXPIRED)
    groups: dict[str, dict[str, Group]] = {}
    for dimension, by_key in tallies.items():
        groups[dimension] = {}
        for key, counter in by_key.items():
            group = groups[dimension][key] = Group(key, label(dimension, key))
            for packed, people in counter.items():
                group.people += people
                if packed >> bad_from == 0:  # nothing expired, due or overdue
                    group.people_compliant += people
                for status, count in _unpack(packed).items():
                    group.items[status] += count * people
    return {
        dimension: sorted(found.values(), key=lambda g: g.key)
        for dimension, found in groups.items()
    }
