"""Identity logic: organisations, people and API clients, always scoped to the caller's org.
Plain async functions over a session; they flush, never commit, and raise domain errors."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.passwords import hash_secret, new_client_secret
from upstander.gateway.auth.tokens import revoke_person_tokens
from upstander.gateway.identity import external_refs as refs
from upstander.gateway.identity.schemas import (
    ClientCreate,
    OrgUpdate,
    PersonCreate,
    PersonUpdate,
)
from upstander.gateway.models import ApiClient, Org, Person
from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.clock import Clock
from upstander.kit.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ProblemError
from upstander.kit.pagination import PageParams, paginate
from upstander.kit.scopes import PERSON_SCOPES, held_scopes, scopes_for_roles

MAX_REPORTING_DEPTH = 1000


class InvalidField(ProblemError):
    """A semantically invalid field (the body parsed, but a value does not fit the data)."""

    status, slug, title = 422, "validation-error", "Validation error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            "The request did not validate.", errors=[{"field": field, "message": message}]
        )


def system_principal(org_id: uuid.UUID) -> Principal:
    """The platform acting inside one org (bootstrap, provisioning, tests)."""
    return Principal(kind=PrincipalKind.SERVICE, subject="svc-gateway", org_id=org_id)


def _org_of(principal: Principal) -> uuid.UUID:
    if principal.org_id is None:  # staff_or_client already refuses this; belt and braces
        raise NotFound("No such organisation.")
    return principal.org_id


# --- orgs -------------------------------------------------------------------------------------


async def create_org(session: AsyncSession, *, slug: str, name: str) -> Org:
    """Platform-level (bootstrap, provisioning); not reachable by an org's admin."""
    org = Org(id=uuid.uuid4(), slug=slug.strip().lower(), name=name, active=True, version=1)
    session.add(org)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("An organisation with this slug exists.") from exc
    return org


async def get_current_org(session: AsyncSession, principal: Principal) -> Org:
    org = await session.get(Org, _org_of(principal))
    if org is None:
        raise NotFound("No such organisation.")
    return org


async def update_current_org(session: AsyncSession, principal: Principal, data: OrgUpdate) -> Org:
    org = await get_current_org(session, principal)
    org.name = data.name
    org.version += 1
    await session.flush()
    return org


# --- people -----------------------------------------------------------------------------------


async def list_people(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    email: str | None = None,
    role: str | None = None,
    active: bool | None = None,
    external_ref: str | None = None,
) -> tuple[list[Person], str | None]:
    statement = select(Person).where(Person.org_id == _org_of(principal))
    if external_ref is not None:
        statement = statement.where(refs.condition(_org_of(principal), external_ref))
    if email is not None:
        statement = statement.where(Person.email == email.strip().lower())
    if role is not None:
        # Roles are a JSON list of enum values; its text holds `"role"` on every backend.
        statement = statement.where(cast(Person.roles, String).like(f'%"{role}"%'))
    if active is not None:
        statement = statement.where(Person.active.is_(active))
    return await paginate(session, statement, Person, params)


async def get_person(session: AsyncSession, principal: Principal, person_id: uuid.UUID) -> Person:
    person = await session.get(Person, person_id)
    if person is None or person.org_id != _org_of(principal):
        raise NotFound("No such person.")
    return person


async def _check_email_free(
    session: AsyncSession, org_id: uuid.UUID, email: str, person_id: uuid.UUID | None = None
) -> None:
    statement = (
        select(func.count())
        .select_from(Person)
        .where(Person.org_id == org_id, Person.email == email)
    )
    if person_id is not None:
        statement = statement.where(Person.id != person_id)
    if await session.scalar(statement):
        raise Conflict("A person with this email exists in the organisation.")


async def _check_manager(
    session: AsyncSession, org_id: uuid.UUID, manager_id: uuid.UUID, person_id: uuid.UUID | None
) -> None:
    manager = await session.get(Person, manager_id)
    if manager is None or manager.org_id != org_id:
        raise InvalidField("body.manager_id", "No such person in this organisation.")
    if person_id is None:
        return
    # Walk up from the new manager; meeting the person means the line would loop.
    current: uuid.UUID | None = manager_id
    for _ in range(MAX_REPORTING_DEPTH):
        if current is None:
            return
        if current == person_id:
            raise InvalidField(
                "body.manager_id", "This manager would make the reporting line a loop."
            )
        current = await session.scalar(select(Person.manager_id).where(Person.id == current))
    raise InvalidField("body.manager_id", "The reporting line is too deep.")


async def _flush_person(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # The checks before passed: a concurrent request took the email or a reference.
        raise Conflict(
            "A person with this email or external reference exists in the organisation."
        ) from exc


async def create_person(session: AsyncSession, principal: Principal, data: PersonCreate) -> Person:
    org = _org_of(principal)
    email = data.email.lower()
    await _check_email_free(session, org, email)
    if data.manager_id is not None:
        await _check_manager(session, org, data.manager_id, None)
    person = Person(
        id=uuid.uuid4(),
        org_id=org,
        email=email,
        name=data.name,
        title=data.title,
        roles=[str(role) for role in dict.fromkeys(data.roles)],
        manager_id=data.manager_id,
        is_leadership=data.is_leadership,
        start_date=data.start_date,
        location=data.location,
        language=str(data.language),
        active=True,
        password_hash=await hash_secret(data.password) if data.password else None,
        version=1,
    )
    if data.external_refs:
        await refs.check_free(session, person, data.external_refs)
    refs.attach(person, data.external_refs)
    session.add(person)
    await _flush_person(session)
    await session.refresh(person, attribute_names=["external_refs"])  # for the response
    return person


async def upsert_person(
    session: AsyncSession, principal: Principal, data: PersonCreate, *, clock: Clock
) -> tuple[Person, bool]:
    """Add the person, or, when one of `data.external_refs` already names a person of the
    organisation, update that one with the fields sent (never the password) and give them the
    other references. Returns the person and whether they are new."""
    existing = None
    if data.external_refs:
        existing = await refs.person_by_refs(session, _org_of(principal), data.external_refs)
    if existing is None:
        return await create_person(session, principal, data), True
    sent = data.model_dump(exclude_unset=True, exclude={"password", "external_refs"})
    normal = {
        **sent,
        **({"email": sent["email"].lower()} if "email" in sent else {}),
        **({"roles": [str(r) for r in dict.fromkeys(sent["roles"])]} if "roles" in sent else {}),
        **({"language": str(sent["language"])} if "language" in sent else {}),
    }
    differing = {name: sent[name] for name in sent if normal[name] != getattr(existing, name)}
    if differing:
        update = PersonUpdate.model_validate(differing)
        existing = await update_person(
            session, principal, existing.id, update, if_match=None, clock=clock
        )
    if refs.attach(existing, data.external_refs):
        if not differing:
            existing.version += 1
        await _flush_person(session)
    return existing, False


def etag_matches(if_match: str | None, version: int) -> bool:
    """RFC 9110 If-Match: `*` or a list of (possibly weak) entity tags."""
    if if_match is None:
        return True
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == f'"{version}"' for tag in tags)


async def update_person(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    data: PersonUpdate,
    *,
    if_match: str | None,
    clock: Clock,
) -> Person:
    person = await get_person(session, principal, person_id)
    if not etag_matches(if_match, person.version):
        raise PreconditionFailed("The person changed since you read it; fetch it again.")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if "email" in changes:
        changes["email"] = changes["email"].lower()
        await _check_email_free(session, person.org_id, changes["email"], person.id)
    if changes.get("manager_id") is not None:
        await _check_manager(session, person.org_id, changes["manager_id"], person.id)
    if "roles" in changes:
        changes["roles"] = [str(role) for role in dict.fromkeys(changes["roles"])]
    if "language" in changes:
        changes["language"] = str(changes["language"])
    new_refs = changes.pop("external_refs", None)
    if new_refs is not None:
        await refs.check_free(session, person, data.external_refs or [])
        refs.attach(person, data.external_refs or [], replace=True)
    password = changes.pop("password", None)
    if "password" in data.model_fields_set:
        person.password_hash = await hash_secret(password) if password else None
        await revoke_person_tokens(session, person.id, clock)
        # Their access tokens end with the sessions: an access change (gateway events.py).
        person.access_version = (person.access_version or 0) + 1
    for name, value in changes.items():
        setattr(person, name, value)
    if changes.get("active") is False:
        await revoke_person_tokens(session, person.id, clock)
    person.version += 1
    await _flush_person(session)
    return person


async def deactivate_person(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, *, clock: Clock
) -> None:
    person = await get_person(session, principal, person_id)
    if person.active:
        person.active = False
        person.version += 1
        await revoke_person_tokens(session, person.id, clock)
        await session.flush()


# --- API clients ------------------------------------------------------------------------------


async def list_clients(
    session: AsyncSession, principal: Principal, params: PageParams, *, active: bool | None = None
) -> tuple[list[ApiClient], str | None]:
    statement = select(ApiClient).where(ApiClient.org_id == _org_of(principal))
    if active is not None:
        statement = statement.where(ApiClient.active.is_(active))
    return await paginate(session, statement, ApiClient, params)


async def get_client(
    session: AsyncSession, principal: Principal, client_pk: uuid.UUID
) -> ApiClient:
    client = await session.get(ApiClient, client_pk)
    if client is None or client.org_id is None or client.org_id != _org_of(principal):
        raise NotFound("No such client.")
    return client


async def registering_person(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID
) -> uuid.UUID | None:
    """Who answers for a client being registered: the staff member doing it, or, when an API
    client registers one, the person who owns that client (so a client can never mint a
    client that sees more than a person behind it). The platform itself (bootstrap,
    provisioning) registers ownerless clients, which services show no case content."""
    if principal.kind == PrincipalKind.STAFF:
        person_id: uuid.UUID | None = principal.person_id
    else:
        person_id = principal.owner_id
    if person_id is None:
        return None
    person = await session.get(Person, person_id)
    if person is None or person.org_id != org_id:
        return None
    return person.id


async def create_client(
    session: AsyncSession,
    principal: Principal,
    data: ClientCreate,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> tuple[ApiClient, str]:
    """Returns the client and its secret; the secret is never retrievable again. The client is
    owned by the person registering it (`created_by`; see `registering_person`)."""
    org_id = _org_of(principal)
    # Scopes are granted, never more than the granter holds: an admin their roles' scopes (as
    # narrowed by their token), a client registering a client its own scopes. Deprecated
    # `roles` stand for the scopes they map to.
    scopes = list(
        dict.fromkeys(
            [
                *(str(s) for s in data.scopes),
                *sorted(scopes_for_roles(str(role) for role in data.roles) - PERSON_SCOPES),
            ]
        )
    )
    beyond = [scope for scope in scopes if scope not in held_scopes(principal)]
    if beyond:
        raise Forbidden("You cannot grant scopes you do not hold.", scopes=beyond)
    secret = client_secret or new_client_secret()
    client = ApiClient(
        id=uuid.uuid4(),
        org_id=org_id,
        created_by=await registering_person(session, principal, org_id),
        client_id=client_id or "cl_" + secrets.token_urlsafe(12),
        secret_hash=await hash_secret(secret),
        name=data.name,
        scopes=scopes,
        roles=[str(role) for role in dict.fromkeys(data.roles)],
        kind="client",
        active=True,
    )
    session.add(client)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("A client with this client_id exists.") from exc
    return client, secret


async def deactivate_client(
    session: AsyncSession, principal: Principal, client_pk: uuid.UUID
) -> None:
    client = await get_client(session, principal, client_pk)
    client.active = False
    await session.flush()
