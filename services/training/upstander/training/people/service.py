"""Keep the people projection current from `upstander.person.*` events, and read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest
from upstander.training.compliance.engine import PersonLike
from upstander.training.compliance.store import refresh_items
from upstander.training.models import Person

SUPERVISOR_ROLES = frozenset({"supervisor", "manager"})


def _uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    return uuid.UUID(str(value))


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    return date.fromisoformat(str(value)[:10])


def _location(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return str(value).strip().upper()[:64]


async def apply_person_event(
    session: AsyncSession,
    *,
    event_type: str,
    org_id: uuid.UUID | None,
    data: dict[str, Any],
    at: datetime,
) -> Person | None:
    """Upsert the person an event describes; return it, or None for an older event."""
    try:
        person_id = uuid.UUID(str(data["person_id"]))
        org = _uuid(data.get("org_id")) or org_id
        if org is None:
            raise ValueError("no org")
        manager_id = _uuid(data.get("manager_id"))
        start_date = _date(data.get("start_date"))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRequest("The person event is malformed.") from exc

    person = await session.get(Person, person_id)
    if person is not None and person.org_id != org:
        raise BadRequest("The person event names another organisation.")
    if person is not None and person.last_event_at > at:
        return None  # a newer event already applied

    roles = [str(role)[:64] for role in (data.get("roles") or [])][:32]
    location = _location(data.get("location"))
    active = event_type != "upstander.person.deactivated" and bool(data.get("active", True))
    flag = bool(data.get("is_supervisor")) or bool(SUPERVISOR_ROLES.intersection(roles))
    old_manager = None
    if person is None:
        person = Person(
            id=person_id,
            org_id=org,
            created_at=at,
            is_supervisor=False,
            location_since=None,
        )
        session.add(person)
    else:
        old_manager = person.manager_id
        if location != person.location:
            person.location_since = at
    person.email = str(data.get("email") or person.email or "")[:320].lower()
    person.name = str(data.get("name") or "")[:200]
    person.title = str(data["title"])[:200] if data.get("title") else None
    person.roles = roles
    person.manager_id = manager_id
    person.is_leadership = bool(data.get("is_leadership"))
    person.supervisor_flag = flag
    person.start_date = start_date
    person.location = location
    person.active = active
    person.last_event_at = at
    person.updated_at = at
    await session.flush()
    touched = {person_id, old_manager, manager_id}
    await refresh_supervisors(session, org, touched, at)
    # Their own items, and their managers' (whose supervisor status may have changed).
    await refresh_items(session, org, people=touched, requirements=None, policies=None)
    return person


async def refresh_supervisors(
    session: AsyncSession, org_id: uuid.UUID, people: Iterable[uuid.UUID | None], at: datetime
) -> None:
    """Recompute `is_supervisor` (flag, or an active report) for these people; a promotion
    starts their supervisor clock."""
    ids = {person_id for person_id in people if person_id is not None}
    if not ids:
        return
    rows = (
        await session.scalars(select(Person).where(Person.org_id == org_id, Person.id.in_(ids)))
    ).all()
    with_reports = set(
        (
            await session.scalars(
                select(Person.manager_id).where(
                    Person.org_id == org_id,
                    Person.manager_id.in_(ids),
                    Person.active.is_(True),
                )
            )
        ).all()
    )
    for person in rows:
        supervises = person.active and (person.supervisor_flag or person.id in with_reports)
        if supervises and not person.is_supervisor:
            person.supervisor_since = at
        elif not supervises:
            person.supervisor_since = None
        person.is_supervisor = supervises
    await session.flush()


async def people_of_org(session: AsyncSession, org_id: uuid.UUID) -> list[Person]:
    return list((await session.scalars(select(Person).where(Person.org_id == org_id))).all())


def subtree(people: Iterable[PersonLike], root: uuid.UUID) -> set[uuid.UUID]:
    """Everyone below `root` in the reporting lines (not `root` itself); cycle-safe."""
    reports: dict[uuid.UUID, list[uuid.UUID]] = {}
    for person in people:
        if person.manager_id is not None:
            reports.setdefault(person.manager_id, []).append(person.id)
    found: set[uuid.UUID] = set()
    stack = [root]
    while stack:
        for child in reports.get(stack.pop(), []):
            if child not in found and child != root:
                found.add(child)
                stack.append(child)
    return found
