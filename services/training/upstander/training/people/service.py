"""Keep the people projection current from `upstander.person.*` events, and read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit import directory
from upstander.kit.contracts import InvalidEvent, PersonEvent, parse_data
from upstander.training.compliance.engine import PersonLike
from upstander.training.compliance.store import refresh_items
from upstander.training.models import Person

SUPERVISOR_ROLES = frozenset({"supervisor", "manager"})


def _location(value: str | None) -> str | None:
    """Locations compare as upper-case codes (`ca` is `CA`)."""
    if not value or not value.strip():
        return None
    return value.strip().upper()


# The people table has no null email or name: an absent one is empty.
_NORMALISE = {
    "email": lambda value: (value or "").lower(),
    "name": lambda value: value or "",
    "title": lambda value: value or None,
    "location": _location,
}


async def apply_person_event(
    session: AsyncSession,
    *,
    event_type: str,
    org_id: uuid.UUID | None,
    data: Mapping[str, Any],
    at: datetime,
) -> Person | None:
    """`apply_person` for an event's type and raw data (`InvalidEvent` if malformed)."""
    event = parse_data(event_type, data, org_id=org_id)
    if not isinstance(event, PersonEvent):
        raise InvalidEvent(f"{event_type} is not a person event.", fields=["type"])
    return await apply_person(session, event, at=at)


async def apply_person(session: AsyncSession, event: PersonEvent, *, at: datetime) -> Person | None:
    """Upsert the person an event describes (the kit's projection: an older event than the
    last applied one, or one naming another organisation, is ignored); return it, or None
    when ignored. Then their supervisor status and compliance items, and their managers'."""
    change = await directory.upsert_person(
        session,
        Person,
        event,
        at=at,
        defaults={
            "email": "",
            "name": "",
            "created_at": at,
            "updated_at": at,
            "is_supervisor": False,
            "location_since": None,
        },
        normalise=_NORMALISE,
    )
    if change is None:
        return None
    person = change.person
    old_manager = change.previous.get("manager_id", person.manager_id)
    if "location" in change.previous:
        person.location_since = at
    person.supervisor_flag = bool(SUPERVISOR_ROLES.intersection(person.roles or []))
    person.updated_at = at
    await session.flush()
    touched = {person.id, old_manager, person.manager_id}
    await refresh_supervisors(session, person.org_id, touched, at)
    # Their own items, and their managers' (whose supervisor status may have changed).
    await refresh_items(session, person.org_id, people=touched, requirements=None, policies=None)
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
