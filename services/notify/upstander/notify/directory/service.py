"""Keep the directory projection from the gateway's events, and pick recipients from it."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.crypto import Vault
from upstander.notify.models import Org, Person

SUPPORTED_LANGUAGES = ("en", "es")


def _uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def normalise_language(value: Any) -> str:
    """`es-MX` → `es`; anything unsupported → `en`."""
    primary = str(value or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in SUPPORTED_LANGUAGES else "en"


async def upsert_org(session: AsyncSession, data: Mapping[str, Any]) -> Org | None:
    org_id = _uuid(data.get("org_id") or data.get("id"))
    if org_id is None:
        return None
    org = await session.get(Org, org_id)
    if org is None:
        org = Org(id=org_id, slug="", name="")
        session.add(org)
    org.slug = str(data.get("slug") or org.slug)[:100]
    org.name = str(data.get("name") or org.name)[:200]
    if "active" in data:
        org.active = bool(data["active"])
    await session.flush()
    return org


async def upsert_person(
    session: AsyncSession,
    vault: Vault,
    data: Mapping[str, Any],
    *,
    org_id: uuid.UUID | None,
    deactivated: bool = False,
) -> Person | None:
    """Create or update a person from a `upstander.person.*` event (fields absent from the
    event keep their value); a deactivation only switches the person off."""
    person_id = _uuid(data.get("person_id") or data.get("id"))
    org_id = _uuid(data.get("org_id")) or org_id
    if person_id is None or org_id is None:
        return None
    person = await session.get(Person, person_id)
    if person is None:
        await vault.create_key(session, org_id=org_id, owner_id=person_id)
        person = Person(id=person_id, org_id=org_id, roles=[], language="en", active=True)
        session.add(person)
    elif person.org_id != org_id:
        return None  # a person never moves between tenants; ignore a confused event
    if "email" in data:
        person.email = str(data["email"]) if data["email"] else None
    if "name" in data:
        person.name = str(data["name"]) if data["name"] else None
    if "roles" in data:
        person.roles = sorted({str(r) for r in (data["roles"] or [])})
    if "manager_id" in data:
        person.manager_id = _uuid(data["manager_id"])
    if "is_leadership" in data:
        person.is_leadership = bool(data["is_leadership"])
    if "language" in data:
        person.language = normalise_language(data["language"])
    if deactivated:
        person.active = False
    elif "active" in data:
        person.active = bool(data["active"])
    await session.flush()
    return person


async def people_with_role(
    session: AsyncSession,
    org_id: uuid.UUID,
    role: str,
    *,
    excluding: Collection[uuid.UUID] = (),
) -> list[Person]:
    """The org's active people holding `role`, minus `excluding`, in a stable order."""
    people = await session.scalars(
        select(Person).where(Person.org_id == org_id, Person.active.is_(True)).order_by(Person.id)
    )
    excluded = set(excluding)
    return [p for p in people if role in (p.roles or []) and p.id not in excluded]


@dataclass(frozen=True)
class Recipient:
    """What the rules engine needs of a person, read without unsealing their contact details
    (`has_email` says an address is on file)."""

    id: uuid.UUID
    roles: tuple[str, ...]
    language: str
    has_email: bool


async def active_people(
    session: AsyncSession, org_id: uuid.UUID, ids: Collection[uuid.UUID] | None = None
) -> list[Recipient]:
    """The org's active people (or those of `ids`), in a stable order."""
    statement = (
        select(Person.id, Person.roles, Person.language, Person.email.is_not(None))
        .where(Person.org_id == org_id, Person.active.is_(True))
        .order_by(Person.id)
    )
    if ids is not None:
        if not ids:
            return []
        statement = statement.where(Person.id.in_(list(ids)))
    return [
        Recipient(row[0], tuple(row[1] or ()), row[2] or "en", bool(row[3]))
        for row in await session.execute(statement)
    ]


async def manager_of(
    session: AsyncSession, org_id: uuid.UUID, person_id: uuid.UUID
) -> uuid.UUID | None:
    return await session.scalar(
        select(Person.manager_id).where(Person.id == person_id, Person.org_id == org_id)
    )
