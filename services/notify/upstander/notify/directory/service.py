"""Keep the directory projection from the gateway's events, and pick recipients from it."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit import directory
from upstander.kit.contracts import OrgEvent, PersonEvent
from upstander.kit.crypto import Vault
from upstander.notify.models import Org, Person

SUPPORTED_LANGUAGES = ("en", "es")


def normalise_language(value: Any) -> str:
    """`es-MX` → `es`; anything unsupported → `en`."""
    primary = str(value or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in SUPPORTED_LANGUAGES else "en"


def _blank_is_none(value: str | None) -> str | None:
    return value or None


# An empty text is no value; a language is one notify writes in.
_NORMALISE = {"email": _blank_is_none, "name": _blank_is_none, "language": normalise_language}


async def upsert_org(session: AsyncSession, event: OrgEvent) -> Org:
    """Create or update an organisation from `upstander.org.*` (the kit's projection)."""
    return await directory.upsert_org(session, Org, event)


async def upsert_person(session: AsyncSession, vault: Vault, event: PersonEvent) -> Person | None:
    """Create or update a person from `upstander.person.*` (the kit's projection: fields
    absent from the event keep their value; a deactivation only switches the person off).
    None when the event was ignored (another organisation's person)."""
    change = await directory.upsert_person(
        session, Person, event, vault=vault, normalise=_NORMALISE
    )
    return change.person if change is not None else None


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
