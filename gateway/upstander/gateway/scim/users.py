"""SCIM Users over the gateway's directory (`Person`): how a person reads as a SCIM resource,
how a resource (POST, PUT, or a PATCH applied to the current one) is written back, and the
queries behind `/Users`. Plain functions over a session that flush, never commit.

A deactivation (`active: false`) or a DELETE revokes the person's refresh tokens at once and
bumps their access version (the gateway's `before_flush` hook, events.py), so their access
tokens are refused on the next request and `upstander.person.deactivated` and
`upstander.access.changed` reach every service in the same transaction."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.tokens import revoke_person_tokens
from upstander.gateway.identity.service import etag_matches
from upstander.gateway.models import Person
from upstander.gateway.scim.discovery import CORE_USER, ENTERPRISE, UPSTANDER
from upstander.gateway.scim.errors import ScimError, invalid_value
from upstander.gateway.scim.filters import Compare, Logical, get_ci
from upstander.gateway.scim.groups import leave_all_teams
from upstander.gateway.scim.patch import LEADERSHIP_REMOVED, ROLES_REMOVED
from upstander.kit.auth import Role
from upstander.kit.clock import Clock

NO_EMAIL_DOMAIN = "no-email.invalid"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
ROLES = {str(role) for role in Role}
MAX_REPORTING_DEPTH = 1000
CORE_URNS = (CORE_USER,)

EXTENSION_URNS = (ENTERPRISE, UPSTANDER)
MULTI_VALUED = {"emails", "roles", "groups", "phonenumbers", "addresses", "members"}
# The Upstander `roles` are a person's whole set of roles: a PATCH `add` sets them (docs/scim.md).
SET_ON_ADD = frozenset({f"{UPSTANDER}:roles".lower()})


def version_tag(version: int) -> str:
    return f'W/"{version}"'


def _timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _derived_emails(email: str) -> list[dict[str, Any]]:
    if email.endswith("@" + NO_EMAIL_DOMAIN):
        return []
    return [{"value": email, "type": "work", "primary": True}]


# The attributes an identity provider may leave out or remove that the platform still
# needs: SCIM shows them absent while the person keeps (or takes) a value (`scim_unset`).
UNSET_ATTRIBUTES = ("displayName", "preferredLanguage", "active", "isLeadership")


def _internal(person: Person, attribute: str) -> Any:
    if attribute == "displayName":
        return person.name
    if attribute == "preferredLanguage":
        return person.language or "en"
    if attribute == "active":
        return bool(person.active)
    return bool(person.is_leadership)


def _hidden(person: Person, attribute: str) -> bool:
    """Absent over SCIM: the IdP left it out or removed it, and the platform's value is still
    the one it kept then (a value set since, say by an admin, is shown)."""
    unset = person.scim_unset or {}
    return attribute in unset and unset[attribute] == _internal(person, attribute)


def render(
    person: Person,
    base: str,
    manager: Person | None = None,
    teams: list[Any] | None = None,
) -> dict[str, Any]:
    """The person as a SCIM User with both extensions (an extension only when it has a value),
    `groups` their role groups then their teams."""
    roles = [str(role) for role in person.roles or []]
    manager_object: dict[str, Any] | None = None
    if person.manager_id is not None:
        manager_object = {
            "value": str(person.manager_id),
            "$ref": f"{base}/Users/{person.manager_id}",
        }
    enterprise: dict[str, Any] = {}
    if person.employee_number:
        enterprise["employeeNumber"] = person.employee_number
    if person.department:
        enterprise["department"] = person.department
    if manager_object:
        enterprise["manager"] = manager_object
    name: dict[str, Any] = {}
    if person.given_name:
        name["givenName"] = person.given_name
    if person.family_name:
        name["familyName"] = person.family_name
    upstander: dict[str, Any] = {}
    if roles:
        upstander["roles"] = roles
    if not _hidden(person, "isLeadership"):
        upstander["isLeadership"] = bool(person.is_leadership)
    if person.location:
        upstander["location"] = person.location
    groups = [
        {"value": role, "display": role, "$ref": f"{base}/Groups/{role}"} for role in roles
    ] + [
        {
            "value": str(team.id),
            "display": team.display_name,
            "$ref": f"{base}/Groups/{team.id}",
        }
        for team in teams or []
    ]
    resource: dict[str, Any] = {
        "schemas": [CORE_USER],
        "id": str(person.id),
        "userName": person.scim_user_name or person.email,
        "displayName": person.name,
        "emails": person.scim_emails or _derived_emails(person.email),
        "active": bool(person.active),
        "preferredLanguage": person.language or "en",
        "groups": groups,
        "meta": {
            "resourceType": "User",
            "created": _timestamp(person.created_at),
            "lastModified": _timestamp(person.updated_at or person.created_at),
            "location": f"{base}/Users/{person.id}",
            "version": version_tag(person.version or 1),
        },
    }
    for attribute in ("displayName", "preferredLanguage", "active"):
        if _hidden(person, attribute):
            del resource[attribute]
    if name:
        resource["name"] = name
    if person.external_id is not None:
        resource["externalId"] = person.external_id
    if person.title:
        resource["title"] = person.title
    for urn, extension in ((ENTERPRISE, enterprise), (UPSTANDER, upstander)):
        if extension:
            resource["schemas"].append(urn)
            resource[urn] = extension
    return resource


# ----------------------------------------------------------------------------- reading input


def boolean(value: Any, field: str) -> bool:
    """A SCIM boolean; Entra sends `"True"`/`"False"` strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_value(f"{field} must be a boolean.")


def _text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value(f"{field} must be a string.")
    value = value.strip()
    if len(value) > limit:
        raise invalid_value(f"{field} is longer than {limit} characters.")
    return value or None


def _extension(resource: dict[str, Any], urn: str) -> dict[str, Any]:
    found = get_ci(resource, urn)
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise invalid_value(f"{urn} must be an object.")
    return found


def _manager_id(value: Any) -> uuid.UUID | None:
    if isinstance(value, dict):
        value = get_ci(value, "value")
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise invalid_value("manager.value is not the id of a User.") from None


def _roles(resource: dict[str, Any], upstander: dict[str, Any]) -> list[str] | None:
    """The roles the resource sets: the extension's, else core `roles` values when any; None
    when it says nothing (a new person then gets `staff`; a PUT keeps theirs)."""
    raw = get_ci(upstander, "roles")
    if raw is None and upstander.get(ROLES_REMOVED):
        return []
    if raw is None:
        core = get_ci(resource, "roles")
        if isinstance(core, list) and core:
            raw = [get_ci(item, "value") if isinstance(item, dict) else item for item in core]
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > 8:
        raise invalid_value("roles is a list of at most 8 role names.")
    names = [str(item).strip().lower() for item in raw]
    unknown = sorted(set(names) - ROLES)
    if unknown:
        raise invalid_value(f"Unknown roles: {', '.join(unknown)[:200]}.")
    return list(dict.fromkeys(names))


def _language(resource: dict[str, Any]) -> str | None:
    value = get_ci(resource, "preferredLanguage") or get_ci(resource, "locale")
    if not isinstance(value, str) or not value:
        return None
    return "es" if value.lower().startswith("es") else "en"


def _emails(raw: Any) -> list[dict[str, Any]]:
    """The `emails` as provisioned (value, type, primary, display), at most 10."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 10:
        raise invalid_value("emails is a list of at most 10 addresses.")
    found: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid_value("Each of emails is an object.")
        value = _text(get_ci(item, "value"), "emails.value", 320)
        if value is None:
            continue
        kept: dict[str, Any] = {"value": value}
        for name, limit in (("type", 32), ("display", 200)):
            text = _text(get_ci(item, name), f"emails.{name}", limit)
            if text is not None:
                kept[name] = text
        primary = get_ci(item, "primary")
        if primary is not None:
            kept["primary"] = boolean(primary, "emails.primary")
        found.append(kept)
    return found


def _sign_in_email(user_name: str, emails: list[dict[str, Any]]) -> str:
    """The address a person signs in with: the userName when it is one (what Okta and Entra
    send), else the primary email, else the work one, else the first."""
    if EMAIL.match(user_name.lower()):
        return user_name.lower()
    ordered = sorted(
        emails,
        key=lambda item: (not item.get("primary"), str(item.get("type", "")).lower() != "work"),
    )
    for item in ordered:
        value = str(item["value"]).lower()
        if EMAIL.match(value):
            return value
    # Someone without an address (a volunteer known to the IdP by a login name): the
    # directory keys people by email, so they get one that can never be delivered
    # (RFC 2606 `.invalid`), derived from the userName; it is never shown over SCIM.
    digest = hashlib.sha256(user_name.lower().encode()).hexdigest()[:32]
    return f"{digest}@{NO_EMAIL_DOMAIN}"


def read_user(resource: dict[str, Any]) -> dict[str, Any]:
    """The person's columns a User resource sets (validated). Absent attributes are None."""
    if not isinstance(resource, dict):
        raise ScimError(400, "The body is a User object.", "invalidSyntax")
    user_name = get_ci(resource, "userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise invalid_value("userName is required.")
    user_name = user_name.strip()
    if len(user_name) > 320:
        raise invalid_value("userName is longer than 320 characters.")
    emails = _emails(get_ci(resource, "emails"))
    email = _sign_in_email(user_name, emails)
    name = get_ci(resource, "name")
    name = name if isinstance(name, dict) else {}
    given = _text(get_ci(name, "givenName"), "name.givenName", 100)
    family = _text(get_ci(name, "familyName"), "name.familyName", 100)
    given_display = _text(get_ci(resource, "displayName"), "displayName", 200) or _text(
        get_ci(name, "formatted"), "name.formatted", 200
    )
    display = given_display or " ".join(part for part in (given, family) if part) or email
    enterprise = _extension(resource, ENTERPRISE)
    upstander = _extension(resource, UPSTANDER)
    active = get_ci(resource, "active")
    leadership = get_ci(upstander, "isLeadership")
    if leadership is None and upstander.get(LEADERSHIP_REMOVED):
        leadership = False
    external_id = get_ci(resource, "externalId")
    return {
        "email": email,
        "user_name": None if user_name.lower() == email else user_name,
        "emails": emails or None,
        "name": display[:200],
        "display_given": given_display is not None,
        "given_name": given,
        "family_name": family,
        "title": _text(get_ci(resource, "title"), "title", 200),
        "external_id": _text(external_id, "externalId", 200),
        "active": None if active is None else boolean(active, "active"),
        "language": _language(resource),
        "department": _text(get_ci(enterprise, "department"), "department", 200),
        "employee_number": _text(get_ci(enterprise, "employeeNumber"), "employeeNumber", 64),
        "manager_id": _manager_id(get_ci(enterprise, "manager")),
        "roles": _roles(resource, upstander),
        "is_leadership": None if leadership is None else boolean(leadership, "isLeadership"),
        "leadership_given": get_ci(upstander, "isLeadership") is not None,
        "location": _text(get_ci(upstander, "location"), "location", 64),
    }


# ----------------------------------------------------------------------------- queries


def _live(org_id: uuid.UUID) -> Any:
    return select(Person).where(Person.org_id == org_id, Person.scim_deleted_at.is_(None))


async def get_user(session: AsyncSession, org_id: uuid.UUID, user_id: str) -> Person:
    try:
        person_id = uuid.UUID(user_id)
    except ValueError:
        raise ScimError(404, "No such User.") from None
    person = await session.scalar(_live(org_id).where(Person.id == person_id))
    if person is None:
        raise ScimError(404, "No such User.")
    return person


async def manager_of(session: AsyncSession, person: Person) -> Person | None:
    if person.manager_id is None:
        return None
    return await session.get(Person, person.manager_id)


def user_name_is(value: str) -> Any:
    """The condition "this person's SCIM userName is `value`" (case-insensitive)."""
    wanted = value.strip().lower()
    return or_(
        func.lower(Person.scim_user_name) == wanted,
        and_(Person.scim_user_name.is_(None), Person.email == wanted),
    )


def _narrowing(tree: Any) -> list[Any]:
    """SQL conditions implied by a filter's top-level `and` of `userName eq`, `externalId eq`
    and `id eq` (what Okta and Entra send); the full filter is still applied after."""
    if isinstance(tree, Logical) and tree.op == "and":
        return _narrowing(tree.left) + _narrowing(tree.right)
    if not isinstance(tree, Compare) or tree.op != "eq" or tree.path.filter is not None:
        return []
    if tree.path.urn not in (None, CORE_USER) or tree.path.sub is not None:
        return []
    if not isinstance(tree.value, str):
        return []
    attribute = tree.path.attribute.lower()
    if attribute == "username":
        return [user_name_is(tree.value)]
    if attribute == "externalid":
        return [Person.external_id == tree.value]
    if attribute == "id":
        try:
            return [Person.id == uuid.UUID(tree.value)]
        except ValueError:
            return [Person.id.is_(None)]
    return []


async def candidates(session: AsyncSession, org_id: uuid.UUID, tree: Any) -> list[Person]:
    """The org's live people a filter may match, oldest first (stable paging)."""
    statement = _live(org_id)
    if tree is not None:
        for condition in _narrowing(tree):
            statement = statement.where(condition)
    rows = await session.scalars(statement.order_by(Person.created_at, Person.id))
    return list(rows.all())


# ----------------------------------------------------------------------------- writing


async def _check_unique(
    session: AsyncSession, org_id: uuid.UUID, values: dict[str, Any], person_id: uuid.UUID | None
) -> None:
    user_name = values["user_name"] or values["email"]
    for condition, label in (
        (user_name_is(user_name), "userName"),
        (Person.email == values["email"], "email"),
        (Person.external_id == values["external_id"], "externalId"),
    ):
        if label == "externalId" and values["external_id"] is None:
            continue
        statement = (
            select(func.count()).select_from(Person).where(Person.org_id == org_id, condition)
        )
        if person_id is not None:
            statement = statement.where(Person.id != person_id)
        if await session.scalar(statement):
            raise ScimError(409, f"Another User has this {label}.", "uniqueness")


async def _check_manager(
    session: AsyncSession, org_id: uuid.UUID, manager_id: uuid.UUID, person_id: uuid.UUID | None
) -> None:
    manager = await session.get(Person, manager_id)
    if manager is None or manager.org_id != org_id:
        raise invalid_value("manager.value names no User of this organisation.")
    current: uuid.UUID | None = manager_id
    for _ in range(MAX_REPORTING_DEPTH):
        if current is None:
            return
        if person_id is not None and current == person_id:
            raise invalid_value("This manager would make the reporting line a loop.")
        current = await session.scalar(select(Person.manager_id).where(Person.id == current))
    raise invalid_value("The reporting line is too deep.")


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        raise ScimError(409, "Another User has this userName or externalId.", "uniqueness") from (
            error
        )


async def _write(
    session: AsyncSession,
    person: Person,
    values: dict[str, Any],
    *,
    clock: Clock,
    creating: bool = False,
) -> None:
    """Write a whole resource's values to `person` (PUT semantics: what it leaves out is
    cleared, except roles and leadership, which only the Upstander extension sets). Of the
    attributes a person always has, those it leaves out keep their value (a removed
    `isLeadership` is false; a left-out displayName is made from the name) and read as absent
    from then on; a new person shows the defaults they got."""
    if values["manager_id"] is not None and values["manager_id"] != person.manager_id:
        await _check_manager(session, person.org_id, values["manager_id"], person.id)
    if person.scim_user_name != values["user_name"]:
        person.scim_user_name = values["user_name"]
    if person.scim_emails != values["emails"]:
        person.scim_emails = values["emails"]
    for column in (
        "email",
        "name",
        "given_name",
        "family_name",
        "title",
        "external_id",
        "department",
        "employee_number",
        "manager_id",
        "location",
    ):
        if getattr(person, column) != values[column]:
            setattr(person, column, values[column])
    if values["language"] is not None and person.language != values["language"]:
        person.language = values["language"]
    if values["roles"] is not None and list(person.roles or []) != values["roles"]:
        person.roles = values["roles"]
    if values["is_leadership"] is not None and person.is_leadership != values["is_leadership"]:
        person.is_leadership = values["is_leadership"]
    if values["active"] is not None and person.active != values["active"]:
        person.active = values["active"]
        if not values["active"]:
            await revoke_person_tokens(session, person.id, clock)
    given = {
        "displayName": values["display_given"],
        "preferredLanguage": values["language"] is not None,
        "active": values["active"] is not None,
        "isLeadership": values["leadership_given"],
    }
    unset = (
        {}
        if creating
        else {name: _internal(person, name) for name in UNSET_ATTRIBUTES if not given[name]}
    )
    if (person.scim_unset or {}) != unset:
        person.scim_unset = unset or None


async def create_user(
    session: AsyncSession, org_id: uuid.UUID, resource: dict[str, Any], *, clock: Clock
) -> Person:
    values = read_user(resource)
    # A person deleted over SCIM and provisioned again comes back as themself (their records,
    # cases and trainings stay theirs); anyone else with the email is a conflict.
    returning = await session.scalar(
        select(Person).where(
            Person.org_id == org_id,
            Person.email == values["email"],
            Person.scim_deleted_at.is_not(None),
        )
    )
    await _check_unique(session, org_id, values, returning.id if returning else None)
    if values["active"] is None:
        values["active"] = True
    if returning is not None:
        returning.scim_deleted_at = None
        await _write(session, returning, values, clock=clock, creating=True)
        returning.version = (returning.version or 1) + 1
        await _flush(session)
        return returning
    if values["manager_id"] is not None:
        await _check_manager(session, org_id, values["manager_id"], None)
    person = Person(
        id=uuid.uuid4(),
        org_id=org_id,
        email=values["email"],
        scim_user_name=values["user_name"],
        scim_emails=values["emails"],
        name=values["name"],
        given_name=values["given_name"],
        family_name=values["family_name"],
        title=values["title"],
        external_id=values["external_id"],
        department=values["department"],
        employee_number=values["employee_number"],
        manager_id=values["manager_id"],
        location=values["location"],
        language=values["language"] or "en",
        roles=values["roles"] if values["roles"] is not None else [str(Role.STAFF)],
        is_leadership=bool(values["is_leadership"]),
        active=values["active"],
        version=1,
    )
    session.add(person)
    await _flush(session)
    return person


def check_version(person: Person, if_match: str | None) -> None:
    if not etag_matches(if_match, person.version or 1):
        raise ScimError(412, "The User changed since you read it (If-Match).")


async def replace_user(
    session: AsyncSession,
    person: Person,
    resource: dict[str, Any],
    *,
    if_match: str | None,
    clock: Clock,
) -> Person:
    check_version(person, if_match)
    values = read_user(resource)
    requested_id = get_ci(resource, "id")
    if requested_id is not None and str(requested_id) != str(person.id):
        raise ScimError(400, "id is immutable.", "mutability")
    await _check_unique(session, person.org_id, values, person.id)
    before = _snapshot(person)
    await _write(session, person, values, clock=clock)
    if _snapshot(person) != before:
        person.version = (person.version or 1) + 1
    await _flush(session)
    return person


_SNAPSHOT = (
    "email",
    "scim_user_name",
    "scim_emails",
    "name",
    "given_name",
    "family_name",
    "title",
    "external_id",
    "department",
    "employee_number",
    "manager_id",
    "location",
    "language",
    "is_leadership",
    "active",
    "scim_unset",
)


def _snapshot(person: Person) -> tuple[Any, ...]:
    return (*(getattr(person, column) for column in _SNAPSHOT), tuple(person.roles or []))


async def delete_user(
    session: AsyncSession, person: Person, *, if_match: str | None, clock: Clock
) -> None:
    """Deprovision: deactivated (records keep the person), tokens revoked, gone from SCIM."""
    check_version(person, if_match)
    await leave_all_teams(session, person)
    person.scim_deleted_at = clock.now()
    if person.active:
        person.active = False
        await revoke_person_tokens(session, person.id, clock)
    person.version = (person.version or 1) + 1
    await session.flush()
