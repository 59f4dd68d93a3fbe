"""SCIM Groups are Upstander's roles: one fixed group per role (`id` and `displayName` are the
role's name, e.g. `case_manager`), whose members are the people holding it. Adding a member
grants the role, removing one takes it away; both are access changes (the person's tokens are
refused from then on, as for any role change). Groups cannot be created under other names,
renamed or deleted: a POST naming a role answers that role's group (201, members added); any
other name is 400 `invalidValue`. Why roles and not teams: the directory has no teams, and
roles are what an identity provider's group assignments usually mean for an application."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.models import Person
from upstander.gateway.scim.discovery import CORE_GROUP
from upstander.gateway.scim.errors import ScimError, invalid_value
from upstander.gateway.scim.filters import get_ci
from upstander.kit.auth import Role

ROLE_NAMES = [str(role) for role in Role]


def role_of(name: Any) -> str:
    """The role a group id or displayName names (`Case Manager`, `case-manager` too)."""
    if isinstance(name, str):
        wanted = name.strip().lower().replace(" ", "_").replace("-", "_")
        if wanted in ROLE_NAMES:
            return wanted
    raise ScimError(404, "No such Group: groups are the Upstander roles.")


async def members_of(session: AsyncSession, org_id: uuid.UUID, role: str) -> list[Person]:
    rows = await session.scalars(
        select(Person)
        .where(Person.org_id == org_id, Person.scim_deleted_at.is_(None))
        .order_by(Person.created_at, Person.id)
    )
    return [person for person in rows if role in (person.roles or [])]


def render(
    role: str, members: list[Person], base: str, *, with_members: bool = True
) -> dict[str, Any]:
    ids = sorted(str(person.id) for person in members)
    version = hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]
    resource: dict[str, Any] = {
        "schemas": [CORE_GROUP],
        "id": role,
        "displayName": role,
        "meta": {
            "resourceType": "Group",
            "location": f"{base}/Groups/{role}",
            "version": f'W/"{version}"',
        },
    }
    if with_members:
        resource["members"] = [
            {
                "value": str(person.id),
                "$ref": f"{base}/Users/{person.id}",
                "display": person.name,
                "type": "User",
            }
            for person in members
        ]
    return resource


def member_ids(resource: dict[str, Any]) -> set[uuid.UUID]:
    raw = get_ci(resource, "members")
    if raw is None:
        return set()
    if not isinstance(raw, list):
        raise invalid_value("members is a list.")
    found: set[uuid.UUID] = set()
    for item in raw:
        value = get_ci(item, "value") if isinstance(item, dict) else item
        try:
            found.add(uuid.UUID(str(value)))
        except ValueError:
            raise invalid_value("A member's value is not the id of a User.") from None
    return found


async def set_members(
    session: AsyncSession, org_id: uuid.UUID, role: str, wanted: set[uuid.UUID]
) -> list[Person]:
    """Make exactly `wanted` hold `role` (each a live person of the org, else 400)."""
    people = {
        person.id: person
        for person in await session.scalars(
            select(Person).where(Person.org_id == org_id, Person.scim_deleted_at.is_(None))
        )
    }
    unknown = wanted - set(people)
    if unknown:
        raise invalid_value("A member names no User of this organisation.")
    for person in people.values():
        roles = list(person.roles or [])
        holds = role in roles
        if person.id in wanted and not holds:
            person.roles = [*roles, role]
            person.version = (person.version or 1) + 1
        elif person.id not in wanted and holds:
            person.roles = [name for name in roles if name != role]
            person.version = (person.version or 1) + 1
    await session.flush()
    return await members_of(session, org_id, role)
