"""Keep the directory projection (orgs, people) from the gateway's events, and walk
reporting lines up from a person (the chain of command a case is hidden from)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.models import Org, Person
from upstander.kit.crypto import Vault

# Deeper than any real organisation chart; a guard should the projection hold a cycle.
MAX_CHAIN_DEPTH = 64


def as_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from an event field, or None for a missing or malformed one."""
    if value in (None, ""):
        return None
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


async def upsert_org(
    session: AsyncSession, data: Mapping[str, Any], *, org_id: uuid.UUID | None
) -> Org | None:
    """Create or update an organisation from `upstander.org.*` (absent fields keep theirs)."""
    org_id = as_uuid(data.get("org_id")) or org_id
    if org_id is None:
        return None
    org = await session.get(Org, org_id)
    if org is None:
        org = Org(id=org_id, slug="", name="", active=True)
        session.add(org)
    if data.get("slug"):
        org.slug = str(data["slug"])[:100]
    if data.get("name"):
        org.name = str(data["name"])[:200]
    if "active" in data:
        org.active = bool(data["active"])
    await session.flush()
    return org


async def org_slug(session: AsyncSession, org_id: uuid.UUID) -> str | None:
    org = await session.get(Org, org_id)
    return org.slug if org is not None and org.slug else None


async def upsert_person(
    session: AsyncSession,
    vault: Vault,
    data: Mapping[str, Any],
    *,
    org_id: uuid.UUID | None,
    deactivated: bool = False,
) -> Person | None:
    """Create or update a person from `upstander.person.*` (absent fields keep their value);
    a deactivation switches the person off but keeps their place in reporting lines."""
    person_id = as_uuid(data.get("person_id"))
    org_id = as_uuid(data.get("org_id")) or org_id
    if person_id is None or org_id is None:
        return None
    person = await session.get(Person, person_id)
    if person is None:
        await vault.create_key(session, org_id=org_id, owner_id=person_id)
        person = Person(id=person_id, org_id=org_id, roles=[], language="en", active=True)
        session.add(person)
    elif person.org_id != org_id:
        return None  # a person never moves between tenants: ignore a confused event
    if "email" in data:
        person.email = _text(data["email"], 320)
    if "name" in data:
        person.name = _text(data["name"], 200)
    if "title" in data:
        person.title = _text(data["title"], 200)
    if "roles" in data:
        person.roles = sorted({str(role) for role in (data["roles"] or [])})
    if "manager_id" in data:
        manager_id = as_uuid(data["manager_id"])
        person.manager_id = manager_id if manager_id != person_id else None
    if "is_leadership" in data:
        person.is_leadership = bool(data["is_leadership"])
    if "start_date" in data:
        person.start_date = _as_date(data["start_date"])
    if "location" in data:
        person.location = _text(data["location"], 200)
    if "language" in data:
        person.language = str(data["language"] or "en")[:16]
    if deactivated:
        person.active = False
    elif "active" in data:
        person.active = bool(data["active"])
    await session.flush()
    return person


async def managers_above(
    session: AsyncSession, org_id: uuid.UUID, people: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Everyone above `people` in the org's reporting lines (not `people` themselves, unless
    one manages another). Walks one level per query; a cycle or a chain deeper than
    `MAX_CHAIN_DEPTH` ends the walk instead of looping."""
    above: set[uuid.UUID] = set()
    seen: set[uuid.UUID] = set(people)
    frontier: set[uuid.UUID] = set(people)
    for _ in range(MAX_CHAIN_DEPTH):
        if not frontier:
            break
        rows = await session.execute(
            select(Person.manager_id).where(
                Person.org_id == org_id,
                Person.id.in_(frontier),
                Person.manager_id.is_not(None),
            )
        )
        managers = {manager_id for (manager_id,) in rows if manager_id is not None}
        above |= managers
        frontier = managers - seen
        seen |= managers
    return above


async def foreign_people(
    session: AsyncSession, org_id: uuid.UUID, people: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `people` the directory holds as people of another organisation. A case only
    ever names its own organisation's people; an id the directory does not hold (yet: a
    person may be named before their record arrives) is not foreign."""
    wanted = set(people)
    if not wanted:
        return set()
    return set(
        await session.scalars(
            select(Person.id).where(Person.id.in_(wanted), Person.org_id != org_id)
        )
    )
