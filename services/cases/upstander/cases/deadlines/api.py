"""Routes of an organisation's deadline settings (admins)."""

from __future__ import annotations

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import record
from upstander.cases.deadlines import service
from upstander.cases.deadlines.schemas import SettingsIn, SettingsOut
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses

router = make_router(prefix="/cases/v1", tags=["settings"])


@router.get(
    "/settings",
    operation_id="get_case_settings",
    summary="Your organisation's case deadlines",
    description="The legal preset and the (possibly shorter) deadlines new cases get.",
    response_model=SettingsOut,
    responses=problem_responses(401, 403),
)
async def get_case_settings(
    principal: Principal = require_roles(Role.ADMIN),
    session: AsyncSession = Depends(get_session),
) -> SettingsOut:
    assert principal.org_id is not None
    return SettingsOut.model_validate(await service.get_settings(session, principal.org_id))


@router.put(
    "/settings",
    operation_id="put_case_settings",
    summary="Set your organisation's case deadlines",
    description=(
        "`jurisdiction_preset` `eu_directive` sets the ceiling: acknowledge within 7 days, "
        "feedback within 3 months. `acknowledge_days` (≤ 7) and `feedback_months` (≤ 3) may "
        "only shorten them (422 otherwise). Applies to cases opened from now on."
    ),
    response_model=SettingsOut,
    responses=problem_responses(401, 403, 422),
)
async def put_case_settings(
    body: SettingsIn,
    request: Request,
    principal: Principal = require_roles(Role.ADMIN),
    session: AsyncSession = Depends(get_session),
) -> SettingsOut:
    now = request.app.state.clock.now()
    settings = await service.put_settings(
        session,
        principal,
        preset=body.jurisdiction_preset,
        acknowledge_days=body.acknowledge_days,
        feedback_months=body.feedback_months,
        now=now,
    )
    await record(
        session,
        principal,
        "settings.update",
        at=now,
        detail={
            "acknowledge_days": settings.acknowledge_days,
            "feedback_months": settings.feedback_months,
        },
    )
    return SettingsOut.model_validate(settings)
