"""Routes of an organisation's deadline settings (admins)."""

from __future__ import annotations

from upstander.cases.access import AdminCtx, case_router
from upstander.cases.deadlines import service
from upstander.cases.deadlines.schemas import SettingsIn, SettingsOut
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["settings"])


@router.get(
    "/settings",
    operation_id="get_case_settings",
    dependencies=[require_scope(Scope.CASES_ADMIN)],
    summary="Your organisation's case deadlines",
    description="The legal preset and the (possibly shorter) deadlines new cases get.",
    response_model=SettingsOut,
    responses=problem_responses(401, 403),
)
async def get_case_settings(ctx: AdminCtx) -> SettingsOut:
    return SettingsOut.model_validate(await service.get_settings(ctx.session, ctx.org_id))


@router.put(
    "/settings",
    operation_id="put_case_settings",
    dependencies=[require_scope(Scope.CASES_ADMIN)],
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
async def put_case_settings(body: SettingsIn, ctx: AdminCtx) -> SettingsOut:
    settings = await service.put_settings(
        ctx.session,
        ctx.principal,
        preset=body.jurisdiction_preset,
        acknowledge_days=body.acknowledge_days,
        feedback_months=body.feedback_months,
        checkin_offsets_days=body.checkin_offsets_days,
        retention_days_after_close=body.retention_days_after_close,
        now=ctx.now,
    )
    await ctx.audit(
        "settings.update",
        detail={
            "acknowledge_days": settings.acknowledge_days,
            "feedback_months": settings.feedback_months,
            "checkin_offsets_days": settings.checkin_offsets_days,
            "retention_days_after_close": settings.retention_days_after_close,
        },
    )
    return SettingsOut.model_validate(settings)
