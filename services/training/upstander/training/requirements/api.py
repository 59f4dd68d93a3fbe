"""Routes of requirements, presets and exemptions: authorise, call the service, return."""

from __future__ import annotations

import uuid

from fastapi import Depends, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles, staff_or_client
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_scope
from upstander.training.access import MANAGERS, READERS, clock_of
from upstander.training.requirements import service
from upstander.training.requirements.presets import PRESETS, Preset
from upstander.training.requirements.schemas import (
    ExemptionCreate,
    ExemptionOut,
    PresetAdoption,
    PresetList,
    PresetOut,
    PresetRule,
    RequirementCreate,
    RequirementOut,
    RequirementUpdate,
)

router = make_router(prefix="/training/v1", tags=["requirements"])
editors = require_roles(*MANAGERS)


def _preset_out(preset: Preset) -> PresetOut:
    return PresetOut(
        key=preset.key,
        name=preset.name,
        description=preset.description,
        rules=[
            PresetRule(
                key=rule.key,
                name=rule.name,
                audience=rule.audience,
                location=rule.location,
                course_title=rule.course.title,
                course_minutes=rule.course.minutes,
                due_within_days=rule.due_within_days,
                recurrence_months=rule.recurrence_months,
                min_minutes=rule.min_minutes,
                interactive_required=rule.interactive_required,
            )
            for rule in preset.rules
        ],
    )


@router.get(
    "/requirements",
    operation_id="list_requirements",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="List the organisation's training requirements",
    response_model=Page[RequirementOut],
    responses=problem_responses(400),
)
async def list_requirements(
    include_retired: bool = Query(False, description="Include retired requirements."),
    params: PageParams = Depends(page_params),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Page[RequirementOut]:
    rows, next_cursor = await service.list_requirements(
        session, principal, params, include_retired=include_retired
    )
    return Page[RequirementOut](
        items=[RequirementOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/requirements",
    operation_id="create_requirement",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Require a course of an audience (trainer, admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=RequirementOut,
    responses=problem_responses(400, 413, 415),
)
async def create_requirement(
    body: RequirementCreate,
    request: Request,
    response: Response,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> RequirementOut:
    requirement = await service.create_requirement(
        session, principal, body, now=clock_of(request).now()
    )
    response.headers["Location"] = f"/training/v1/requirements/{requirement.id}"
    response.headers["ETag"] = f'"{requirement.version}"'
    return RequirementOut.model_validate(requirement)


@router.get(
    "/requirements/{requirement_id}",
    operation_id="get_requirement",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Get a requirement",
    response_model=RequirementOut,
)
async def get_requirement(
    requirement_id: uuid.UUID,
    response: Response,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> RequirementOut:
    requirement = await service.get_requirement(session, principal, requirement_id)
    response.headers["ETag"] = f'"{requirement.version}"'
    return RequirementOut.model_validate(requirement)


@router.patch(
    "/requirements/{requirement_id}",
    operation_id="update_requirement",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Change or retire a requirement (trainer, admin)",
    response_model=RequirementOut,
    responses=problem_responses(400, 412, 413, 415),
)
async def update_requirement(
    requirement_id: uuid.UUID,
    body: RequirementUpdate,
    response: Response,
    if_match: str | None = Header(None, alias="If-Match", max_length=200),
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> RequirementOut:
    requirement = await service.update_requirement(
        session, principal, requirement_id, body, if_match=if_match
    )
    response.headers["ETag"] = f'"{requirement.version}"'
    return RequirementOut.model_validate(requirement)


@router.get(
    "/requirement-presets",
    operation_id="list_requirement_presets",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="State rules that can be adopted as requirements",
    response_model=PresetList,
)
async def list_requirement_presets(
    _principal: Principal = Depends(staff_or_client),
) -> PresetList:
    return PresetList(items=[_preset_out(preset) for preset in PRESETS.values()])


@router.post(
    "/requirements/presets/{key}/adopt",
    operation_id="adopt_requirement_preset",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Adopt a preset: add its courses if missing and its requirements (idempotent)",
    response_model=PresetAdoption,
)
async def adopt_requirement_preset(
    key: str,
    request: Request,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> PresetAdoption:
    requirements, courses, created = await service.adopt_preset(
        session, principal, key, now=clock_of(request).now()
    )
    return PresetAdoption(
        preset=key,
        requirements=[RequirementOut.model_validate(r) for r in requirements],
        created_courses=courses,
        created_requirements=created,
    )


@router.post(
    "/requirements/{requirement_id}/exemptions",
    operation_id="create_exemption",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Excuse a person from a requirement (trainer, admin)",
    status_code=status.HTTP_201_CREATED,
    response_model=ExemptionOut,
    responses=problem_responses(409, 413, 415),
)
async def create_exemption(
    requirement_id: uuid.UUID,
    body: ExemptionCreate,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> ExemptionOut:
    exemption = await service.create_exemption(session, principal, requirement_id, body)
    return ExemptionOut.model_validate(exemption)


@router.get(
    "/requirements/{requirement_id}/exemptions",
    operation_id="list_exemptions",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Who is excused from a requirement (trainer, admin, auditor)",
    response_model=Page[ExemptionOut],
    responses=problem_responses(400),
)
async def list_exemptions(
    requirement_id: uuid.UUID,
    params: PageParams = Depends(page_params),
    principal: Principal = require_roles(*READERS),
    session: AsyncSession = Depends(get_session),
) -> Page[ExemptionOut]:
    rows, next_cursor = await service.list_exemptions(session, principal, requirement_id, params)
    return Page[ExemptionOut](
        items=[ExemptionOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )
