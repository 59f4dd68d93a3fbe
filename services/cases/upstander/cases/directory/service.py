"""Keep the directory projection (orgs, people) from the gateway's events, and walk
reporting lines up from a person (the chain of command a case is hidden from)."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.models import Org, Person
from upstander.kit import directory
from upstander.kit.contracts import OrgEvent, PersonEvent
from upstander.kit.crypto import Vault

# Deeper than any real organisation chart; a guard should the projection hold a cycle.
MAX_CHAIN_DEPTH = 64


def _blank_is_none(value: str | None) -> str | None:
    return value or None


# An empty text is no value; a person without a language reads English.
_NORMALISE = {
    "email": _blank_is_none,
    "name": _blank_is_none,
    "title": _blank_is_none,
    "location": _blank_is_none,
    "language": lambda value: value or "en",
}


async def upsert_org(session: AsyncSession, event: OrgEvent) -> Org:
    """Create or update an organisation from `upstander.org.*` (the kit's projection)."""
    return await directory.upsert_org(session, Org, event)


async def org_slug(session: AsyncSession, org_id: uuid.UUID) -> str | None:
    org = await session.get(Org, org_id)
    return org.slug if org is not None and org.slug else None


async def upsert_person(session: AsyncSession, vault: Vault, event: PersonEvent) -> Person | None:
    """Create or update a person from `upstander.person.*` (the kit's projection: absent
    fields keep their value; a deactivation switches the person off but keeps their place in
    reporting lines). None when the event was ignored (another organisation's person)."""
    change = await directory.upsert_person(
        session, Person, event, vault=vault, normalise=_NORMALISE
    )
    return change.person if change is not None else None


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
