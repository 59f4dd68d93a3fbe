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
    summary="Set your organisation's case deadlines, check-in days and retention",
    description=(
        "`jurisdiction_preset` `eu_directive` sets the ceiling: acknowledge within 7 days, "
        "feedback within 3 months. `acknowledge_days` (≤ 7) and `feedback_months` (≤ 3) may "
        "only shorten them (422 otherwise). Applies to cases opened from now on. "
        "`checkin_offsets_days` (default `[30, 90]`) and `retention_days_after_close` "
        "(default 1461, at least 365) apply to every case from the next scheduler pass."
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
        checkin_offsets_days=body.checkin_offsets_days,
        retention_days_after_close=body.retention_days_after_close,
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
            "checkin_offsets_days": settings.checkin_offsets_days,
            "retention_days_after_close": settings.retention_days_after_close,
        },
    )
    return SettingsOut.model_validate(settings)
