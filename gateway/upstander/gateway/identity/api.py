"""Routes of the identity API under `/identity/v1/`: the caller's org, people, API clients.
Admins manage; people who handle cases or training may read the directory. Everything is
scoped to the caller's org (another org's ids are 404)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.identity import service
from upstander.gateway.identity.schemas import (
    ClientCreate,
    ClientCreated,
    ClientOut,
    OrgOut,
    OrgUpdate,
    PersonCreate,
    PersonOut,
    PersonUpdate,
)
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.clock import Clock
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = make_router(prefix="/identity/v1", tags=["identity"])

Admin = Annotated[Principal, require_roles(Role.ADMIN)]
# Reading the directory: the people who assign cases, approve measures, or track training need
# to find colleagues' ids; only admins change it.
DirectoryReader = Annotated[
    Principal,
    require_roles(
        Role.ADMIN,
        Role.CASE_MANAGER,
        Role.INVESTIGATOR,
        Role.REVIEWER,
        Role.TRAINER,
        Role.HR_INTEGRATION,
        Role.AUDITOR,
    ),
]
Session = Annotated[AsyncSession, Depends(get_session)]
Paging = Annotated[PageParams, Depends(page_params)]


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


# --- orgs -------------------------------------------------------------------------------------


# `GET /identity/v1/orgs` (your own organisation; every one for a platform operator) and the
# operators' routes are in orgs.py.


@router.get(
    "/orgs/current",
    operation_id="get_current_org",
    dependencies=[require_scope(Scope.ORG_READ)],
    summary="Your organisation",
    response_model=OrgOut,
    responses=problem_responses(401, 403, 404),
)
async def get_current_org(session: Session, principal: Admin) -> OrgOut:
    return OrgOut.model_validate(await service.get_current_org(session, principal))


@router.patch(
    "/orgs/current",
    operation_id="update_current_org",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Rename your organisation",
    response_model=OrgOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def update_current_org(session: Session, principal: Admin, body: OrgUpdate) -> OrgOut:
    return OrgOut.model_validate(await service.update_current_org(session, principal, body))


# --- people -----------------------------------------------------------------------------------


@router.get(
    "/people",
    operation_id="list_people",
    dependencies=[require_scope(Scope.PEOPLE_READ)],
    summary="The staff directory",
    response_model=Page[PersonOut],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_people(
    session: Session,
    principal: DirectoryReader,
    paging: Paging,
    email: Annotated[str | None, Query(max_length=320, description="Exact email.")] = None,
    role: Annotated[Role | None, Query(description="People holding this role.")] = None,
    active: Annotated[bool | None, Query(description="Only active (or inactive) people.")] = None,
    external_ref: Annotated[
        str | None,
        Query(
            max_length=265,
            description="Only the person another system calls this: `<system>:<id>` "
            "(400 otherwise).",
            examples=["workday:E-1042"],
        ),
    ] = None,
) -> Page[PersonOut]:
    rows, next_cursor = await service.list_people(
        session, principal, paging, email=email, role=role, active=active, external_ref=external_ref
    )
    return Page[PersonOut](
        items=[PersonOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/people",
    operation_id="create_person",
    dependencies=[require_scope(Scope.PEOPLE_WRITE)],
    summary="Add a person to the directory; upsert by external reference",
    description=(
        "201 with the new person. When one of `external_refs` already names a person of "
        "your organisation, that person is updated with the fields sent instead (200; the "
        "password is never changed this way): an HR sync can send its whole directory again "
        "without making duplicates. References naming two different people, or two for one "
        "system: 409."
    ),
    status_code=201,
    response_model=PersonOut,
    responses={
        200: {"description": "The person with this external reference, updated."},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_person(
    session: Session,
    principal: Admin,
    body: PersonCreate,
    response: Response,
    clock: Annotated[Clock, Depends(get_clock)],
) -> PersonOut:
    person, created = await service.upsert_person(session, principal, body, clock=clock)
    response.status_code = 201 if created else 200
    _etag(response, person.version)
    response.headers["Location"] = f"/identity/v1/people/{person.id}"
    return PersonOut.model_validate(person)


@router.get(
    "/people/{person_id}",
    operation_id="get_person",
    dependencies=[require_scope(Scope.PEOPLE_READ)],
    summary="One person (with an ETag)",
    response_model=PersonOut,
    responses=problem_responses(401, 403, 404),
)
async def get_person(
    session: Session, principal: DirectoryReader, person_id: uuid.UUID, response: Response
) -> PersonOut:
    person = await service.get_person(session, principal, person_id)
    _etag(response, person.version)
    return PersonOut.model_validate(person)


@router.patch(
    "/people/{person_id}",
    operation_id="update_person",
    dependencies=[require_scope(Scope.PEOPLE_WRITE)],
    summary="Change a person (send If-Match with the ETag)",
    response_model=PersonOut,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def update_person(
    session: Session,
    principal: Admin,
    person_id: uuid.UUID,
    body: PersonUpdate,
    response: Response,
    clock: Annotated[Clock, Depends(get_clock)],
    if_match: Annotated[str | None, Header(max_length=200)] = None,
) -> PersonOut:
    person = await service.update_person(
        session, principal, person_id, body, if_match=if_match, clock=clock
    )
    _etag(response, person.version)
    return PersonOut.model_validate(person)


@router.delete(
    "/people/{person_id}",
    operation_id="deactivate_person",
    dependencies=[require_scope(Scope.PEOPLE_WRITE)],
    summary="Deactivate a person (records are kept; sign-in stops)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404),
)
async def deactivate_person(
    session: Session,
    principal: Admin,
    person_id: uuid.UUID,
    clock: Annotated[Clock, Depends(get_clock)],
) -> Response:
    await service.deactivate_person(session, principal, person_id, clock=clock)
    return Response(status_code=204)


# --- API clients ------------------------------------------------------------------------------


@router.get(
    "/clients",
    operation_id="list_clients",
    dependencies=[require_scope(Scope.CLIENTS_MANAGE)],
    summary="Your organisation's API clients",
    response_model=Page[ClientOut],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_clients(
    session: Session,
    principal: Admin,
    paging: Paging,
    active: Annotated[bool | None, Query(description="Only active (or inactive) clients.")] = None,
) -> Page[ClientOut]:
    rows, next_cursor = await service.list_clients(session, principal, paging, active=active)
    return Page[ClientOut](
        items=[ClientOut.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/clients",
    operation_id="create_client",
    dependencies=[require_scope(Scope.CLIENTS_MANAGE)],
    summary="Create an API client (its secret is shown once)",
    status_code=201,
    response_model=ClientCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_client(
    session: Session, principal: Admin, body: ClientCreate, response: Response
) -> ClientCreated:
    client, secret = await service.create_client(session, principal, body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/identity/v1/clients/{client.id}"
    return ClientCreated.model_validate(
        {**ClientOut.model_validate(client).model_dump(), "client_secret": secret}
    )


@router.get(
    "/clients/{client_id}",
    operation_id="get_client",
    dependencies=[require_scope(Scope.CLIENTS_MANAGE)],
    summary="One API client",
    response_model=ClientOut,
    responses=problem_responses(401, 403, 404),
)
async def get_client(session: Session, principal: Admin, client_id: uuid.UUID) -> ClientOut:
    return ClientOut.model_validate(await service.get_client(session, principal, client_id))


@router.delete(
    "/clients/{client_id}",
    operation_id="deactivate_client",
    dependencies=[require_scope(Scope.CLIENTS_MANAGE)],
    summary="Deactivate an API client (its tokens stop being issued)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404),
)
async def deactivate_client(session: Session, principal: Admin, client_id: uuid.UUID) -> Response:
    await service.deactivate_client(session, principal, client_id)
    return Response(status_code=204)
