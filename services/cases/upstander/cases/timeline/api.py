"""The route of a case's timeline, for the people handling it."""

from __future__ import annotations

from fastapi import Depends

from upstander.cases.access import CaseCtx, VisibleCase, case_router
from upstander.cases.timeline import service
from upstander.cases.timeline.schemas import TimelinePage
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["timeline"])


@router.get(
    "/cases/{case_id}/timeline",
    operation_id="get_case_timeline",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Read a case's timeline",
    description=(
        "Everything that happened on the case in one list, oldest first, so someone new to "
        "it catches up in one read: its opening and the reporter's attachments, transitions, "
        "messages both ways, assignments and shares, interim measures, allegations and their "
        "findings, corrective actions (and their completion), retaliation check-ins (and "
        "their answers), notes and interviews (and their corrections), evidence and its "
        "downloads and exports. Items are ordered by `(at, kind, id)`; each says who did it "
        "(`actor`) and carries short facts (`summary`), never the sealed text itself. Page "
        "with `limit` and `cursor`. Hidden cases are 404 as everywhere; reading is audited "
        "(`timeline.read`)."
    ),
    response_model=TimelinePage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def get_case_timeline(
    case: VisibleCase, ctx: CaseCtx, page: PageParams = Depends(page_params)
) -> TimelinePage:
    items, next_cursor = await service.timeline(ctx.session, case, page)
    await ctx.audit("timeline.read", case, detail={"items": len(items)})
    return TimelinePage(items=items, next_cursor=next_cursor)
