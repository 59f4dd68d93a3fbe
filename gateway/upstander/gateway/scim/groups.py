"""SCIM Groups: the role groups and the organisation's teams.

- **Role groups**: one fixed group per Upstander role (`id` and `displayName` are the role's
  name, e.g. `case_manager`), whose members are the people holding it. Adding a member grants
  the role, removing one takes it away; both are access changes (the person's tokens are
  refused from then on, as for any role change). They cannot be renamed or deleted; a POST
  naming a role (`Case Manager`, `case-manager` too) answers that role's group (201, members
  added): what an identity provider's "push group" does the first time.
- **Teams**: any other group an identity provider pushes (a department, a site, a crew): it
  may be created with any `displayName` not already taken in the organisation (409
  `uniqueness`, case-insensitive; a role's name is taken), renamed, filled and emptied, and
  deleted. Teams grant nothing; their members are live people of the same organisation.

Plain functions over a session that flush, never commit."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.models import Person
from upstander.gateway.scim.discovery import CORE_GROUP
from upstander.gateway.scim.errors import ScimError, invalid_value
from upstander.gateway.scim.filters import get_ci
from upstander.gateway.scim.tables import ScimTeam, ScimTeamMember
from upstander.kit.auth import Role

ROLE_NAMES = [str(role) for role in Role]
MAX_MEMBERS = 10_000


def role_key(name: Any) -> str | None:
    """The role a group id or displayName names (`Case Manager`, `case-manager` too), if any."""
    if isinstance(name, str):
        wanted = name.strip().lower().replace(" ", "_").replace("-", "_")
        if wanted in ROLE_NAMES:
            return wanted
    return None


def role_of(name: Any) -> str:
    role = role_key(name)
    if role is None:
        raise ScimError(404, "No such Group.")
    return role


def _timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# ----------------------------------------------------------------------------- reading


async def live_people(session: AsyncSession, org_id: uuid.UUID) -> list[Person]:
    rows = await session.scalars(
        select(Person)
        .where(Person.org_id == org_id, Person.scim_deleted_at.is_(None))
        .order_by(Person.created_at, Person.id)
    )
    return list(rows.all())


async def members_of(session: AsyncSession, org_id: uuid.UUID, role: str) -> list[Person]:
    return [person for person in await live_people(session, org_id) if role in (person.roles or [])]


async def teams(session: AsyncSession, org_id: uuid.UUID) -> list[ScimTeam]:
    rows = await session.scalars(
        select(ScimTeam).where(ScimTeam.org_id == org_id).order_by(ScimTeam.created_at, ScimTeam.id)
    )
    return list(rows.all())


async def team_member_ids(
    session: AsyncSession, team_ids: list[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    found: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    if not team_ids:
        return found
    rows = await session.execute(
        select(ScimTeamMember.team_id, ScimTeamMember.person_id).where(
            ScimTeamMember.team_id.in_(team_ids)
        )
    )
    for team_id, person_id in rows.all():
        found[team_id].add(person_id)
    return found


async def teams_of_people(
    session: AsyncSession, org_id: uuid.UUID, person_ids: list[uuid.UUID] | None = None
) -> dict[uuid.UUID, list[ScimTeam]]:
    """The teams each person is in (of `person_ids`, or of everyone in the organisation)."""
    statement = (
        select(ScimTeamMember.person_id, ScimTeam)
        .join(ScimTeam, ScimTeam.id == ScimTeamMember.team_id)
        .where(ScimTeam.org_id == org_id)
        .order_by(ScimTeam.created_at, ScimTeam.id)
    )
    if person_ids is not None:
        statement = statement.where(ScimTeamMember.person_id.in_(person_ids))
    found: dict[uuid.UUID, list[ScimTeam]] = defaultdict(list)
    for person_id, team in (await session.execute(statement)).all():
        found[person_id].append(team)
    return found


def _member(person: Person, base: str) -> dict[str, Any]:
    # No `display`: a member reads back as it was written (value, $ref, type), and a
    # group's listing does not spell out people's names.
    return {"value": str(person.id), "$ref": f"{base}/Users/{person.id}", "type": "User"}


def render(
    role: str, members: list[Person], base: str, *, with_members: bool = True
) -> dict[str, Any]:
    """A role group."""
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
        resource["members"] = [_member(person, base) for person in members]
    return resource


def render_team(team: ScimTeam, members: list[Person], base: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [CORE_GROUP],
        "id": str(team.id),
        "displayName": team.display_name,
        "meta": {
            "resourceType": "Group",
            "created": _timestamp(team.created_at),
            "lastModified": _timestamp(team.updated_at or team.created_at),
            "location": f"{base}/Groups/{team.id}",
            "version": f'W/"{team.version or 1}"',
        },
    }
    if team.external_id is not None:
        resource["externalId"] = team.external_id
    if members:
        resource["members"] = [_member(person, base) for person in members]
    return resource


async def all_groups(session: AsyncSession, org_id: uuid.UUID, base: str) -> list[dict[str, Any]]:
    """Every group of the organisation: the role groups, then the teams (oldest first)."""
    people = await live_people(session, org_id)
    by_id = {person.id: person for person in people}
    found = [
        render(role, [person for person in people if role in (person.roles or [])], base)
        for role in ROLE_NAMES
    ]
    org_teams = await teams(session, org_id)
    members = await team_member_ids(session, [team.id for team in org_teams])
    for team in org_teams:
        in_team = [by_id[pid] for pid in sorted(members.get(team.id, ()), key=str) if pid in by_id]
        in_team.sort(key=lambda person: (person.created_at, str(person.id)))
        found.append(render_team(team, in_team, base))
    return found


async def get_team(session: AsyncSession, org_id: uuid.UUID, group_id: str) -> ScimTeam:
    try:
        team_id = uuid.UUID(group_id)
    except ValueError:
        raise ScimError(404, "No such Group.") from None
    team = await session.scalar(
        select(ScimTeam).where(ScimTeam.org_id == org_id, ScimTeam.id == team_id)
    )
    if team is None:
        raise ScimError(404, "No such Group.")
    return team


async def team_members(session: AsyncSession, team: ScimTeam) -> list[Person]:
    rows = await session.scalars(
        select(Person)
        .join(ScimTeamMember, ScimTeamMember.person_id == Person.id)
        .where(
            ScimTeamMember.team_id == team.id,
            Person.org_id == team.org_id,
            Person.scim_deleted_at.is_(None),
        )
        .order_by(Person.created_at, Person.id)
    )
    return list(rows.all())


async def render_one(
    session: AsyncSession, org_id: uuid.UUID, group_id: str, base: str
) -> dict[str, Any]:
    role = role_key(group_id)
    if role is not None:
        return render(role, await members_of(session, org_id, role), base)
    team = await get_team(session, org_id, group_id)
    return render_team(team, await team_members(session, team), base)


def member_ids(resource: dict[str, Any]) -> set[uuid.UUID]:
    raw = get_ci(resource, "members")
    if raw is None:
        return set()
    if not isinstance(raw, list) or len(raw) > MAX_MEMBERS:
        raise invalid_value(f"members is a list of at most {MAX_MEMBERS}.")
    found: set[uuid.UUID] = set()
    for item in raw:
        value = get_ci(item, "value") if isinstance(item, dict) else item
        try:
            found.add(uuid.UUID(str(value)))
        except ValueError:
            raise invalid_value("A member's value is not the id of a User.") from None
    return found


# ----------------------------------------------------------------------------- writing


async def _people_named(
    session: AsyncSession, org_id: uuid.UUID, wanted: set[uuid.UUID]
) -> dict[uuid.UUID, Person]:
    if not wanted:
        return {}
    people = {
        person.id: person
        for person in await session.scalars(
            select(Person).where(
                Person.org_id == org_id,
                Person.scim_deleted_at.is_(None),
                Person.id.in_(wanted),
            )
        )
    }
    if wanted - set(people):
        raise invalid_value("A member names no User of this organisation.")
    return people


async def set_members(
    session: AsyncSession, org_id: uuid.UUID, role: str, wanted: set[uuid.UUID]
) -> list[Person]:
    """Make exactly `wanted` hold `role` (each a live person of the org, else 400)."""
    await _people_named(session, org_id, wanted)
    for person in await live_people(session, org_id):
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


def display_name(resource: dict[str, Any]) -> str:
    value = get_ci(resource, "displayName")
    if not isinstance(value, str) or not value.strip():
        raise invalid_value("displayName is required.")
    value = value.strip()
    if len(value) > 200:
        raise invalid_value("displayName is longer than 200 characters.")
    return value


def _external_id(resource: dict[str, Any]) -> str | None:
    value = get_ci(resource, "externalId")
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value("externalId must be a string.")
    value = value.strip()
    if len(value) > 200:
        raise invalid_value("externalId is longer than 200 characters.")
    return value or None


async def _check_name(
    session: AsyncSession, org_id: uuid.UUID, name: str, team_id: uuid.UUID | None
) -> None:
    if role_key(name) is not None:
        raise ScimError(409, "A role group has this displayName.", "uniqueness")
    statement = select(ScimTeam.id).where(
        ScimTeam.org_id == org_id, ScimTeam.name_key == name.lower()
    )
    if team_id is not None:
        statement = statement.where(ScimTeam.id != team_id)
    if await session.scalar(statement.limit(1)) is not None:
        raise ScimError(409, "Another Group has this displayName.", "uniqueness")


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        raise ScimError(409, "Another Group has this displayName.", "uniqueness") from error


async def _set_team_members(session: AsyncSession, team: ScimTeam, wanted: set[uuid.UUID]) -> bool:
    """Make the team's members exactly `wanted`; whether anything changed. A person who
    joins or leaves gets a new version (their `groups` changed)."""
    people = await _people_named(session, team.org_id, wanted)
    current = set(
        (
            await session.scalars(
                select(ScimTeamMember.person_id).where(ScimTeamMember.team_id == team.id)
            )
        ).all()
    )
    joining, leaving = wanted - current, current - wanted
    if leaving:
        await session.execute(
            delete(ScimTeamMember).where(
                ScimTeamMember.team_id == team.id, ScimTeamMember.person_id.in_(leaving)
            )
        )
        for person in await session.scalars(
            select(Person).where(Person.org_id == team.org_id, Person.id.in_(leaving))
        ):
            person.version = (person.version or 1) + 1
    for person_id in sorted(joining, key=str):
        session.add(ScimTeamMember(team_id=team.id, person_id=person_id))
        person = people[person_id]
        person.version = (person.version or 1) + 1
    return bool(joining or leaving)


async def create_team(
    session: AsyncSession, org_id: uuid.UUID, resource: dict[str, Any]
) -> ScimTeam:
    name = display_name(resource)
    await _check_name(session, org_id, name, None)
    team = ScimTeam(
        id=uuid.uuid4(),
        org_id=org_id,
        display_name=name,
        name_key=name.lower(),
        external_id=_external_id(resource),
        version=1,
    )
    session.add(team)
    await _flush(session)
    await _set_team_members(session, team, member_ids(resource))
    await _flush(session)
    return team


async def replace_team(session: AsyncSession, team: ScimTeam, resource: dict[str, Any]) -> None:
    """PUT semantics (a PATCH applied to the current resource too): what it leaves out is
    cleared (externalId, members); displayName is required."""
    name = display_name(resource)
    external_id = _external_id(resource)
    changed = False
    if name != team.display_name:
        await _check_name(session, team.org_id, name, team.id)
        team.display_name, team.name_key = name, name.lower()
        changed = True
    if external_id != team.external_id:
        team.external_id = external_id
        changed = True
    if await _set_team_members(session, team, member_ids(resource)):
        changed = True
    if changed:
        team.version = (team.version or 1) + 1
    await _flush(session)


async def delete_team(session: AsyncSession, team: ScimTeam) -> None:
    members = set(
        (
            await session.scalars(
                select(ScimTeamMember.person_id).where(ScimTeamMember.team_id == team.id)
            )
        ).all()
    )
    if members:
        for person in await session.scalars(
            select(Person).where(Person.org_id == team.org_id, Person.id.in_(members))
        ):
            person.version = (person.version or 1) + 1
    await session.execute(delete(ScimTeamMember).where(ScimTeamMember.team_id == team.id))
    await session.delete(team)
    await session.flush()


async def leave_all_teams(session: AsyncSession, person: Person) -> None:
    """A person deleted over SCIM leaves every team (each team gets a new version)."""
    team_ids = list(
        (
            await session.scalars(
                select(ScimTeamMember.team_id).where(ScimTeamMember.person_id == person.id)
            )
        ).all()
    )
    if not team_ids:
        return
    await session.execute(delete(ScimTeamMember).where(ScimTeamMember.person_id == person.id))
    for team in await session.scalars(
        select(ScimTeam).where(ScimTeam.org_id == person.org_id, ScimTeam.id.in_(team_ids))
    ):
        team.version = (team.version or 1) + 1
