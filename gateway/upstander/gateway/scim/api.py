"""Routes of SCIM 2.0 at `/scim/v2` (RFC 7644): discovery, Users and Groups, for an
organisation's identity provider or HR system.

Authentication: the access token of an API client granted the `scim` scope (or an admin's
own token). Every answer is `application/scim+json`; every refusal a SCIM error body."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from upstander.gateway.models import Person
from upstander.gateway.scim import discovery, groups, users
from upstander.gateway.scim.discovery import CORE_USER, LIST_RESPONSE, PATCH_OP
from upstander.gateway.scim.errors import (
    SCIM_JSON,
    ScimError,
    ScimResponse,
    error_response,
    scim_error_responses,
)
from upstander.gateway.scim.filters import get_ci, matches, parse_filter, split_attribute
from upstander.gateway.scim.patch import apply_patch
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.clock import Clock
from upstander.kit.db import CommittingRoute, get_session
from upstander.kit.errors import ProblemError
from upstander.kit.scopes import Scope, require_scope

PREFIX = "/scim/v2"
MAX_BODY_ATTRIBUTES = 100


class ScimRoute(CommittingRoute):
    """Commits before responding (the kit's route) and answers any refusal, including
    authentication and validation, as a SCIM error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ScimError as error:
                await _roll_back(request)
                return error_response(error)
            except ProblemError as error:
                await _roll_back(request)
                scim_type = "invalidValue" if error.status in (400, 422) else None
                status = 400 if error.status == 422 else error.status
                detail = error.detail or error.title
                return error_response(ScimError(status, detail, scim_type, error.headers))
            except RequestValidationError:
                await _roll_back(request)
                return error_response(ScimError(400, "A parameter is malformed.", "invalidValue"))
            except HTTPException as error:
                await _roll_back(request)
                return error_response(
                    ScimError(error.status_code, str(error.detail), None, dict(error.headers or {}))
                )

        return scim_handler


async def _roll_back(request: Request) -> None:
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    if session is not None:
        await session.rollback()


router = APIRouter(
    prefix=PREFIX,
    tags=["scim"],
    route_class=ScimRoute,
    responses=scim_error_responses(400, 401, 403, 404),
)

# An admin, or an API client granted `scim` (clients pass by scope, people by role).
Provisioner = Annotated[Principal, require_roles(Role.ADMIN)]
Session = Annotated[AsyncSession, Depends(get_session)]
SCIM_SCOPE = [require_scope(Scope.SCIM)]
IfMatch = Annotated[str | None, Header(max_length=200)]


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


ClockDep = Annotated[Clock, Depends(_clock)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _org(principal: Principal) -> Any:
    if principal.org_id is None:
        raise ScimError(403, "SCIM is for an organisation's provisioning client.")
    return principal.org_id


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise ScimError(400, "The body is not JSON.", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "The body is a JSON object.", "invalidSyntax")
    return body


def _json_body(example: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI: a SCIM JSON request body with an example (the body is read by hand: SCIM's
    attribute names are case-insensitive and identity providers send loose types)."""
    schema = {"type": "object", "additionalProperties": True}
    return {
        "requestBody": {
            "required": True,
            "content": {
                SCIM_JSON: {"schema": schema, "example": example},
                "application/json": {"schema": schema, "example": example},
            },
        }
    }


def _scim(
    body: dict[str, Any], status: int = 200, *, etag: str | None = None, location: str | None = None
) -> ScimResponse:
    headers: dict[str, str] = {}
    if etag:
        headers["ETag"] = etag
    if location:
        headers["Location"] = location
    return ScimResponse(body, status_code=status, headers=headers)


def _ok(example: dict[str, Any] | None = None, status: int = 200) -> dict[int | str, Any]:
    content: dict[str, Any] = {"schema": {"type": "object"}}
    if example is not None:
        content["example"] = example
    return {status: {"description": "A SCIM resource.", "content": {SCIM_JSON: content}}}


# ----------------------------------------------------------------------------- projection


def _paths(raw: str | None) -> list[tuple[str | None, str, str | None]]:
    if not raw:
        return []
    try:
        return [split_attribute(part.strip()) for part in raw.split(",") if part.strip()][:50]
    except ScimError:
        raise ScimError(400, "attributes names a malformed path.", "invalidValue") from None


def _holder(resource: dict[str, Any], urn: str | None) -> tuple[dict[str, Any], str | None]:
    if urn is None or urn.lower() in (CORE_USER.lower(), discovery.CORE_GROUP.lower()):
        return resource, None
    key = next((k for k in resource if k.lower() == urn.lower()), None)
    if key is None or not isinstance(resource[key], dict):
        return {}, None
    return resource[key], key


def project(
    resource: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """RFC 7644 3.4.2.5: `attributes` keeps only those (plus `id`, `schemas`, `meta`'s
    resourceType); `excludedAttributes` drops those (never `id`)."""
    wanted = _paths(attributes)
    if wanted:
        kept: dict[str, Any] = {"schemas": resource["schemas"], "id": resource["id"]}
        for urn, name, sub in wanted:
            source, urn_key = _holder(resource, urn)
            key = next((k for k in source if k.lower() == name.lower()), None)
            if key is None:
                continue
            value = source[key]
            if sub is not None and isinstance(value, dict):
                sub_key = next((k for k in value if k.lower() == sub.lower()), None)
                if sub_key is None:
                    continue
                value = {sub_key: value[sub_key]}
            elif sub is not None and isinstance(value, list):
                value = [
                    {k: v for k, v in item.items() if k.lower() == sub.lower()}
                    for item in value
                    if isinstance(item, dict)
                ]
            target = kept if urn_key is None else kept.setdefault(urn_key, {})
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key].update(value)
            else:
                target[key] = value
        return kept
    dropped = _paths(excluded)
    if not dropped:
        return resource
    result = json.loads(json.dumps(resource))
    for urn, name, sub in dropped:
        source, _ = _holder(result, urn)
        key = next((k for k in source if k.lower() == name.lower()), None)
        if key is None or key.lower() in ("id", "schemas"):
            continue
        if sub is None:
            source.pop(key)
        elif isinstance(source[key], dict):
            source[key] = {k: v for k, v in source[key].items() if k.lower() != sub.lower()}
    return result


def _list(resources: list[dict[str, Any]], start_index: int, count: int | None) -> dict[str, Any]:
    start = max(start_index, 1)
    size = discovery.MAX_RESULTS if count is None else max(0, min(count, discovery.MAX_RESULTS))
    page = resources[start - 1 : start - 1 + size]
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": start,
        "itemsPerPage": len(page),
        "Resources": page,
    }


StartIndex = Annotated[
    int, Query(alias="startIndex", ge=-(2**31), le=2**31, description="1-based.")
]
Count = Annotated[
    int | None,
    Query(ge=-(2**31), le=2**31, description=f"Page size (at most {discovery.MAX_RESULTS})."),
]
Filter = Annotated[
    str | None,
    Query(max_length=1000, description='e.g. `userName eq "ana@campaign.example"`.'),
]
Attributes = Annotated[str | None, Query(max_length=2000)]
Excluded = Annotated[str | None, Query(alias="excludedAttributes", max_length=2000)]


# ----------------------------------------------------------------------------- discovery


@router.get(
    "/ServiceProviderConfig",
    operation_id="scim_get_service_provider_config",
    dependencies=SCIM_SCOPE,
    summary="What this SCIM endpoint supports",
    response_class=ScimResponse,
    responses=_ok(),
)
async def service_provider_config(request: Request, principal: Provisioner) -> ScimResponse:
    return _scim(discovery.service_provider_config(_base(request)))


@router.get(
    "/ResourceTypes",
    operation_id="scim_list_resource_types",
    dependencies=SCIM_SCOPE,
    summary="User and Group",
    response_class=ScimResponse,
    responses=_ok(),
)
async def list_resource_types(request: Request, principal: Provisioner) -> ScimResponse:
    found = discovery.resource_types(_base(request))
    return _scim(_list(found, 1, None))


@router.get(
    "/ResourceTypes/{type_id}",
    operation_id="scim_get_resource_type",
    dependencies=SCIM_SCOPE,
    summary="One resource type",
    response_class=ScimResponse,
    responses=_ok(),
)
async def get_resource_type(request: Request, principal: Provisioner, type_id: str) -> ScimResponse:
    for found in discovery.resource_types(_base(request)):
        if found["id"] == type_id:
            return _scim(found)
    raise ScimError(404, "No such resource type.")


@router.get(
    "/Schemas",
    operation_id="scim_list_schemas",
    dependencies=SCIM_SCOPE,
    summary="The User, enterprise, Upstander and Group schemas",
    response_class=ScimResponse,
    responses=_ok(),
)
async def list_schemas(request: Request, principal: Provisioner) -> ScimResponse:
    return _scim(_list(discovery.schemas(_base(request)), 1, None))


@router.get(
    "/Schemas/{schema_id}",
    operation_id="scim_get_schema",
    dependencies=SCIM_SCOPE,
    summary="One schema",
    response_class=ScimResponse,
    responses=_ok(),
)
async def get_schema(request: Request, principal: Provisioner, schema_id: str) -> ScimResponse:
    for found in discovery.schemas(_base(request)):
        if found["id"] == schema_id:
            return _scim(found)
    raise ScimError(404, "No such schema.")


# ----------------------------------------------------------------------------- users

USER_EXAMPLE = {
    "schemas": [CORE_USER, discovery.ENTERPRISE],
    "externalId": "00ujl29u0le5T6Aj10h7",
    "userName": "ana@campaign.example",
    "name": {"givenName": "Ana", "familyName": "Ruiz"},
    "emails": [{"primary": True, "value": "ana@campaign.example", "type": "work"}],
    "displayName": "Ana Ruiz",
    "active": True,
    discovery.ENTERPRISE: {
        "department": "Field",
        "manager": {"value": "0d6b6f43-2c0e-4b8f-8f0e-2a3c6bb1a9a1"},
    },
}
PATCH_EXAMPLE = {
    "schemas": [PATCH_OP],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


async def _render_user(session: AsyncSession, person: Person, base: str) -> dict[str, Any]:
    teams = await groups.teams_of_people(session, person.org_id, [person.id])
    return users.render(
        person, base, await users.manager_of(session, person), teams.get(person.id, [])
    )


@router.get(
    "/Users",
    operation_id="scim_list_users",
    dependencies=SCIM_SCOPE,
    summary="People, filtered and paged",
    response_class=ScimResponse,
    responses=_ok(),
)
async def list_users(
    request: Request,
    principal: Provisioner,
    session: Session,
    filter: Filter = None,
    start_index: StartIndex = 1,
    count: Count = None,
    attributes: Attributes = None,
    excluded_attributes: Excluded = None,
) -> ScimResponse:
    return await _search_users(
        request, principal, session, filter, start_index, count, attributes, excluded_attributes
    )


SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def _joined(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    raise ScimError(400, f"{name} is a list of attribute paths.", "invalidValue")


def _integer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31:
        raise ScimError(400, f"{name} is an integer.", "invalidValue")
    return value


async def _search_body(
    request: Request,
) -> tuple[str | None, int, int | None, str | None, str | None]:
    """A `.search` body (RFC 7644 3.4.3) as the GET query's parameters: filter, startIndex,
    count, attributes, excludedAttributes."""
    body = await _body(request)
    query = get_ci(body, "filter")
    if query is not None and not isinstance(query, str):
        raise ScimError(400, "filter is a string.", "invalidFilter")
    return (
        query,
        _integer(get_ci(body, "startIndex"), "startIndex") or 1,
        _integer(get_ci(body, "count"), "count"),
        _joined(get_ci(body, "attributes"), "attributes"),
        _joined(get_ci(body, "excludedAttributes"), "excludedAttributes"),
    )


@router.post(
    "/Users/.search",
    operation_id="scim_search_users",
    dependencies=SCIM_SCOPE,
    summary="People, filtered and paged (the query in the body, RFC 7644 3.4.3)",
    response_class=ScimResponse,
    responses=_ok(),
    openapi_extra=_json_body(
        {"schemas": [SEARCH_REQUEST], "filter": 'userName eq "ana@campaign.example"'}
    ),
)
async def search_users(request: Request, principal: Provisioner, session: Session) -> ScimResponse:
    return await _search_users(request, principal, session, *await _search_body(request))


@router.post(
    "/.search",
    operation_id="scim_search",
    dependencies=SCIM_SCOPE,
    summary="Users and Groups, filtered and paged (RFC 7644 3.4.3, from the root)",
    response_class=ScimResponse,
    responses=_ok(),
    openapi_extra=_json_body({"schemas": [SEARCH_REQUEST], "filter": 'displayName eq "Ana Ruiz"'}),
)
async def search_everything(
    request: Request, principal: Provisioner, session: Session
) -> ScimResponse:
    body = await _body(request)
    query = get_ci(body, "filter")
    if query is not None and not isinstance(query, str):
        raise ScimError(400, "filter is a string.", "invalidFilter")
    tree = parse_filter(query) if query else None
    base = _base(request)
    found = await _user_resources(session, principal, tree, base)
    found += await _group_resources(session, principal, tree, base)
    listed = _list(
        found,
        _integer(get_ci(body, "startIndex"), "startIndex") or 1,
        _integer(get_ci(body, "count"), "count"),
    )
    attributes = _joined(get_ci(body, "attributes"), "attributes")
    excluded = _joined(get_ci(body, "excludedAttributes"), "excludedAttributes")
    listed["Resources"] = [project(item, attributes, excluded) for item in listed["Resources"]]
    return _scim(listed)


async def _user_resources(
    session: AsyncSession, principal: Principal, tree: Any, base: str
) -> list[dict[str, Any]]:
    people = await users.candidates(session, _org(principal), tree)
    by_id = {person.id: person for person in people}
    teams = await groups.teams_of_people(
        session, _org(principal), [person.id for person in people] if len(people) < 500 else None
    )
    found = []
    for person in people:
        manager = by_id.get(person.manager_id) if person.manager_id else None
        if person.manager_id and manager is None:
            manager = await users.manager_of(session, person)
        resource = users.render(person, base, manager, teams.get(person.id, []))
        if tree is None or matches(resource, tree, users.CORE_URNS):
            found.append(resource)
    return found


async def _search_users(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    filter: str | None,
    start_index: int,
    count: int | None,
    attributes: str | None,
    excluded_attributes: str | None,
) -> ScimResponse:
    tree = parse_filter(filter) if filter else None
    found = await _user_resources(session, principal, tree, _base(request))
    listed = _list(found, start_index, count)
    listed["Resources"] = [
        project(resource, attributes, excluded_attributes) for resource in listed["Resources"]
    ]
    return _scim(listed)


@router.post(
    "/Users",
    operation_id="scim_create_user",
    dependencies=SCIM_SCOPE,
    summary="Provision a person",
    status_code=201,
    response_class=ScimResponse,
    responses={**_ok(status=201), **scim_error_responses(409)},
    openapi_extra=_json_body(USER_EXAMPLE),
)
async def create_user(
    request: Request, principal: Provisioner, session: Session, clock: ClockDep
) -> ScimResponse:
    person = await users.create_user(session, _org(principal), await _body(request), clock=clock)
    resource = await _render_user(session, person, _base(request))
    return _scim(
        resource, 201, etag=resource["meta"]["version"], location=resource["meta"]["location"]
    )


@router.get(
    "/Users/{user_id}",
    operation_id="scim_get_user",
    dependencies=SCIM_SCOPE,
    summary="One person (with an ETag)",
    response_class=ScimResponse,
    responses=_ok(),
)
async def get_user(
    request: Request,
    principal: Provisioner,
    session: Session,
    user_id: str,
    attributes: Attributes = None,
    excluded_attributes: Excluded = None,
) -> ScimResponse:
    person = await users.get_user(session, _org(principal), user_id)
    resource = await _render_user(session, person, _base(request))
    return _scim(
        project(resource, attributes, excluded_attributes), etag=resource["meta"]["version"]
    )


@router.put(
    "/Users/{user_id}",
    operation_id="scim_replace_user",
    dependencies=SCIM_SCOPE,
    summary="Replace a person's attributes (If-Match optional)",
    response_class=ScimResponse,
    responses={**_ok(), **scim_error_responses(409, 412)},
    openapi_extra=_json_body(USER_EXAMPLE),
)
async def replace_user(
    request: Request,
    principal: Provisioner,
    session: Session,
    clock: ClockDep,
    user_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    person = await users.get_user(session, _org(principal), user_id)
    body = await _body(request)
    person = await users.replace_user(session, person, body, if_match=if_match, clock=clock)
    resource = await _render_user(session, person, _base(request))
    return _scim(resource, etag=resource["meta"]["version"])


@router.patch(
    "/Users/{user_id}",
    operation_id="scim_patch_user",
    dependencies=SCIM_SCOPE,
    summary="Change some of a person's attributes (Okta's and Entra's PATCH forms)",
    response_class=ScimResponse,
    responses={**_ok(), **scim_error_responses(409, 412)},
    openapi_extra=_json_body(PATCH_EXAMPLE),
)
async def patch_user(
    request: Request,
    principal: Provisioner,
    session: Session,
    clock: ClockDep,
    user_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    person = await users.get_user(session, _org(principal), user_id)
    users.check_version(person, if_match)
    base = _base(request)
    current = await _render_user(session, person, base)
    patched = apply_patch(
        current,
        await _body(request),
        patch_schema=PATCH_OP,
        core_urns=users.CORE_URNS,
        extension_urns=users.EXTENSION_URNS,
        multi_valued=users.MULTI_VALUED,
        set_on_add=users.SET_ON_ADD,
    )
    if get_ci(patched, "id") != current["id"]:
        raise ScimError(400, "id is immutable.", "mutability")
    person = await users.replace_user(session, person, patched, if_match=None, clock=clock)
    resource = await _render_user(session, person, base)
    return _scim(resource, etag=resource["meta"]["version"])


@router.delete(
    "/Users/{user_id}",
    operation_id="scim_delete_user",
    dependencies=SCIM_SCOPE,
    summary="Deprovision a person (deactivated at once; records are kept)",
    status_code=204,
    response_class=Response,
    responses=scim_error_responses(412),
)
async def delete_user(
    principal: Provisioner,
    session: Session,
    clock: ClockDep,
    user_id: str,
    if_match: IfMatch = None,
) -> Response:
    person = await users.get_user(session, _org(principal), user_id)
    await users.delete_user(session, person, if_match=if_match, clock=clock)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- groups

GROUP_EXAMPLE = {
    "schemas": [discovery.CORE_GROUP],
    "displayName": "Field team North",
    "members": [{"value": "0d6b6f43-2c0e-4b8f-8f0e-2a3c6bb1a9a1"}],
}


async def _group_resources(
    session: AsyncSession, principal: Principal, tree: Any, base: str
) -> list[dict[str, Any]]:
    found = await groups.all_groups(session, _org(principal), base)
    if tree is None:
        return found
    return [resource for resource in found if matches(resource, tree, (discovery.CORE_GROUP,))]


@router.get(
    "/Groups",
    operation_id="scim_list_groups",
    dependencies=SCIM_SCOPE,
    summary="The role groups and the teams",
    response_class=ScimResponse,
    responses=_ok(),
)
async def list_groups(
    request: Request,
    principal: Provisioner,
    session: Session,
    filter: Filter = None,
    start_index: StartIndex = 1,
    count: Count = None,
    attributes: Attributes = None,
    excluded_attributes: Excluded = None,
) -> ScimResponse:
    return await _search_groups(
        request, principal, session, filter, start_index, count, attributes, excluded_attributes
    )


async def _search_groups(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    filter: str | None,
    start_index: int,
    count: int | None,
    attributes: str | None,
    excluded_attributes: str | None,
) -> ScimResponse:
    tree = parse_filter(filter) if filter else None
    found = await _group_resources(session, principal, tree, _base(request))
    listed = _list(found, start_index, count)
    listed["Resources"] = [
        project(resource, attributes, excluded_attributes) for resource in listed["Resources"]
    ]
    return _scim(listed)


@router.post(
    "/Groups/.search",
    operation_id="scim_search_groups",
    dependencies=SCIM_SCOPE,
    summary="Groups, filtered and paged (the query in the body, RFC 7644 3.4.3)",
    response_class=ScimResponse,
    responses=_ok(),
    openapi_extra=_json_body({"schemas": [SEARCH_REQUEST], "filter": 'displayName eq "staff"'}),
)
async def search_groups(request: Request, principal: Provisioner, session: Session) -> ScimResponse:
    return await _search_groups(request, principal, session, *await _search_body(request))


def _created(resource: dict[str, Any]) -> ScimResponse:
    return _scim(
        resource, 201, etag=resource["meta"]["version"], location=resource["meta"]["location"]
    )


@router.post(
    "/Groups",
    operation_id="scim_create_group",
    dependencies=SCIM_SCOPE,
    summary="Create a team, or claim a role's group (a role's name) and add members",
    status_code=201,
    response_class=ScimResponse,
    responses={**_ok(status=201), **scim_error_responses(409)},
    openapi_extra=_json_body(GROUP_EXAMPLE),
)
async def create_group(request: Request, principal: Provisioner, session: Session) -> ScimResponse:
    body = await _body(request)
    org = _org(principal)
    base = _base(request)
    role = groups.role_key(groups.display_name(body))
    if role is not None:
        current = {person.id for person in await groups.members_of(session, org, role)}
        members = await groups.set_members(session, org, role, current | groups.member_ids(body))
        return _created(groups.render(role, members, base))
    team = await groups.create_team(session, org, body)
    return _created(groups.render_team(team, await groups.team_members(session, team), base))


@router.get(
    "/Groups/{group_id}",
    operation_id="scim_get_group",
    dependencies=SCIM_SCOPE,
    summary="One group and its members",
    response_class=ScimResponse,
    responses=_ok(),
)
async def get_group(
    request: Request,
    principal: Provisioner,
    session: Session,
    group_id: str,
    attributes: Attributes = None,
    excluded_attributes: Excluded = None,
) -> ScimResponse:
    resource = await groups.render_one(session, _org(principal), group_id, _base(request))
    return _scim(
        project(resource, attributes, excluded_attributes), etag=resource["meta"]["version"]
    )


def _same_name(body: dict[str, Any], role: str) -> None:
    name = get_ci(body, "displayName")
    if name is not None and groups.role_key(name) != role:
        raise ScimError(400, "A role group cannot be renamed.", "mutability")


def _check_group_version(resource: dict[str, Any], if_match: str | None) -> None:
    if if_match is None:
        return
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if "*" not in tags and resource["meta"]["version"].removeprefix("W/") not in tags:
        raise ScimError(412, "The Group changed since you read it (If-Match).")


async def _write_group(
    session: AsyncSession, org: Any, group_id: str, current: dict[str, Any], body: dict[str, Any]
) -> None:
    """Write a whole Group resource (a PUT's body, or a PATCH applied to the current one)."""
    role = groups.role_key(group_id)
    if role is not None:
        _same_name(body, role)
        await groups.set_members(session, org, role, groups.member_ids(body))
        return
    if get_ci(body, "id") not in (None, current["id"]):
        raise ScimError(400, "id is immutable.", "mutability")
    team = await groups.get_team(session, org, group_id)
    await groups.replace_team(session, team, body)


@router.put(
    "/Groups/{group_id}",
    operation_id="scim_replace_group",
    dependencies=SCIM_SCOPE,
    summary="Replace a group: a team's name and members, a role group's members",
    response_class=ScimResponse,
    responses={**_ok(), **scim_error_responses(409, 412)},
    openapi_extra=_json_body(GROUP_EXAMPLE),
)
async def replace_group(
    request: Request,
    principal: Provisioner,
    session: Session,
    group_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    org = _org(principal)
    base = _base(request)
    current = await groups.render_one(session, org, group_id, base)
    _check_group_version(current, if_match)
    await _write_group(session, org, group_id, current, await _body(request))
    resource = await groups.render_one(session, org, group_id, base)
    return _scim(resource, etag=resource["meta"]["version"])


@router.patch(
    "/Groups/{group_id}",
    operation_id="scim_patch_group",
    dependencies=SCIM_SCOPE,
    summary="Add or remove a group's members; rename a team",
    response_class=ScimResponse,
    responses={**_ok(), **scim_error_responses(409, 412)},
    openapi_extra=_json_body(
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Add",
                    "path": "members",
                    "value": [{"value": "0d6b6f43-2c0e-4b8f-8f0e-2a3c6bb1a9a1"}],
                }
            ],
        }
    ),
)
async def patch_group(
    request: Request,
    principal: Provisioner,
    session: Session,
    group_id: str,
    if_match: IfMatch = None,
) -> ScimResponse:
    org = _org(principal)
    base = _base(request)
    current = await groups.render_one(session, org, group_id, base)
    _check_group_version(current, if_match)
    patched = apply_patch(
        current,
        await _body(request),
        patch_schema=PATCH_OP,
        core_urns=(discovery.CORE_GROUP,),
        extension_urns=(),
        multi_valued={"members"},
    )
    await _write_group(session, org, group_id, current, patched)
    resource = await groups.render_one(session, org, group_id, base)
    if request.headers.get("prefer", "").lower() == "return=minimal":
        return _scim({}, 204)  # pragma: no cover - Entra does not ask for it
    return _scim(resource, etag=resource["meta"]["version"])


@router.delete(
    "/Groups/{group_id}",
    operation_id="scim_delete_group",
    dependencies=SCIM_SCOPE,
    summary="Delete a team (role groups always exist: remove their members instead)",
    status_code=204,
    response_class=Response,
    responses=scim_error_responses(400, 412),
)
async def delete_group(
    request: Request,
    principal: Provisioner,
    session: Session,
    group_id: str,
    if_match: IfMatch = None,
) -> Response:
    org = _org(principal)
    if groups.role_key(group_id) is not None:
        raise ScimError(400, "Role groups cannot be deleted; remove their members.", "mutability")
    team = await groups.get_team(session, org, group_id)
    current = groups.render_team(team, [], _base(request))
    _check_group_version(current, if_match)
    await groups.delete_team(session, team)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- the rest


@router.api_route(
    "/{unknown:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    operation_id="scim_unknown_endpoint",
    dependencies=SCIM_SCOPE,
    summary="Any other SCIM path: a SCIM 404",
    include_in_schema=False,
)
async def unknown_endpoint(principal: Provisioner, unknown: str) -> Response:
    first = unknown.strip("/").split("/", 1)[0]
    if first in ENDPOINTS:
        raise ScimError(405, "This method is not supported on this endpoint.")
    raise ScimError(404, "No such SCIM endpoint.")


ENDPOINTS = frozenset({"ServiceProviderConfig", "ResourceTypes", "Schemas", "Users", "Groups"})
