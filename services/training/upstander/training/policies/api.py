"""Routes of policies: publish versions, acknowledge them, see who has."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles, staff_or_client
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_person, require_scope
from upstander.training.access import MANAGERS, clock_of
from upstander.training.policies import service
from upstander.training.policies.schemas import (
    AcknowledgmentOut,
    PolicyCreate,
    PolicyOut,
    VersionCreate,
    VersionOut,
)

router = make_router(prefix="/training/v1/policies", tags=["policies"])
editors = require_roles(*MANAGERS)


@router.post(
    "",
    operation_id="create_policy",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Create a policy (trainer, admin); publish its text as a version",
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyOut,
    responses=problem_responses(400, 413, 415),
)
async def create_policy(
    body: PolicyCreate,
    response: Response,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> PolicyOut:
    policy = await service.create_policy(session, principal, body)
    response.headers["Location"] = f"/training/v1/policies/{policy.id}"
    return PolicyOut.model_validate(policy)


@router.get(
    "",
    operation_id="list_policies",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="List the organisation's policies",
    response_model=Page[PolicyOut],
    responses=problem_responses(400),
)
async def list_policies(
    params: PageParams = Depends(page_params),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Page[PolicyOut]:
    rows, next_cursor = await service.list_policies(session, principal, params)
    return Page[PolicyOut](
        items=[PolicyOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{policy_id}",
    operation_id="get_policy",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Get a policy",
    response_model=PolicyOut,
)
async def get_policy(
    policy_id: uuid.UUID,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> PolicyOut:
    return PolicyOut.model_validate(await service.get_policy(session, principal, policy_id))


@router.post(
    "/{policy_id}/versions",
    operation_id="publish_policy_version",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Publish the next version (trainer, admin); everyone must acknowledge it",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionOut,
    responses=problem_responses(400, 413, 415),
)
async def publish_policy_version(
    policy_id: uuid.UUID,
    body: VersionCreate,
    request: Request,
    response: Response,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> VersionOut:
    version = await service.publish_version(
        session,
        principal,
        policy_id,
        body,
        now=clock_of(request).now(),
        events=request.app.state.events,
    )
    response.headers["Location"] = f"/training/v1/policies/{policy_id}/versions/{version.number}"
    return VersionOut.model_validate(version)


@router.get(
    "/{policy_id}/versions",
    operation_id="list_policy_versions",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="List a policy's versions, oldest first",
    response_model=Page[VersionOut],
    responses=problem_responses(400),
)
async def list_policy_versions(
    policy_id: uuid.UUID,
    params: PageParams = Depends(page_params),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Page[VersionOut]:
    rows, next_cursor = await service.list_versions(session, principal, policy_id, params)
    return Page[VersionOut](
        items=[VersionOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{policy_id}/versions/{number}",
    operation_id="get_policy_version",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Get one version of a policy",
    response_model=VersionOut,
)
async def get_policy_version(
    policy_id: uuid.UUID,
    number: int,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> VersionOut:
    version = await service.get_version(session, principal, policy_id, number)
    return VersionOut.model_validate(version)


@router.post(
    "/{policy_id}/versions/{number}/acknowledge",
    operation_id="acknowledge_policy_version",
    dependencies=[require_person()],
    summary="Acknowledge the current version yourself (201 the first time, then 200)",
    status_code=status.HTTP_201_CREATED,
    response_model=AcknowledgmentOut,
    responses={**problem_responses(409), 200: {"description": "Acknowledged before."}},
)
async def acknowledge_policy_version(
    policy_id: uuid.UUID,
    number: int,
    request: Request,
    response: Response,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> AcknowledgmentOut:
    acknowledgment, created = await service.acknowledge(
        session,
        principal,
        policy_id,
        number,
        now=clock_of(request).now(),
        events=request.app.state.events,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return AcknowledgmentOut.model_validate(acknowledgment)


@router.get(
    "/{policy_id}/acknowledgments",
    operation_id="list_policy_acknowledgments",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Who acknowledged (trainers see everyone, a person their own)",
    response_model=Page[AcknowledgmentOut],
    responses=problem_responses(400),
)
async def list_policy_acknowledgments(
    policy_id: uuid.UUID,
    version: int | None = Query(None, ge=1),
    params: PageParams = Depends(page_params),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Page[AcknowledgmentOut]:
    rows, next_cursor = await service.list_acknowledgments(
        session, principal, policy_id, params, version=version
    )
    return Page[AcknowledgmentOut](
        items=[AcknowledgmentOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )
