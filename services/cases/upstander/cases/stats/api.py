"""Route of case statistics (admins, auditors, case managers), suppressed below 5."""

from __future__ import annotations

from datetime import datetime

from fastapi import Query

from upstander.cases.access import StatsCtx, case_router
from upstander.cases.problems import InvalidRequest
from upstander.cases.stats.schemas import CaseStats
from upstander.cases.stats.service import case_stats
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["stats"])


@router.get(
    "/stats",
    operation_id="get_case_stats",
    dependencies=[require_scope(Scope.STATS_READ)],
    summary="Statistics of your organisation's cases",
    description=(
        "Cases opened in [`from`, `to`) (both optional, ISO 8601): counts by category, "
        "status and month opened; median days to acknowledge and to close; deadlines met "
        "(acknowledgment by `acknowledge_by`, feedback by `feedback_by`) as counts and rates. "
        "So that no one can be singled out, every count below 5, and every median or rate "
        "computed from fewer than 5 cases, is returned as `null` with `suppressed: true`; "
        "when a breakdown would hide a single cell, the next smallest is hidden too. Counts "
        "cover every case of the organisation (deleted ones excepted), whoever asks."
    ),
    response_model=CaseStats,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 422),
)
async def get_case_stats(
    ctx: StatsCtx,
    since: datetime | None = Query(None, alias="from", description="Opened at or after."),
    until: datetime | None = Query(None, alias="to", description="Opened before."),
) -> CaseStats:
    for name, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest(f"query.{name}", "Give a timezone (e.g. `Z`).")
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("query.to", "`to` must be after `from`.")
    stats = await case_stats(ctx.session, ctx.org_id, since=since, until=until, now=ctx.now)
    await ctx.audit("stats.read")
    return CaseStats.model_validate(stats)
