"""Routes of case files, for the people who handle them."""

from __future__ import annotations

from fastapi import Depends, Query, Response

from upstander.cases.access import CaseCtx, VisibleCase, case_router
from upstander.cases.cases import service
from upstander.cases.cases.schemas import CaseOut, CasePage
from upstander.cases.models import CaseStatus
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["cases"])


@router.get(
    "/cases",
    operation_id="list_cases",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="List cases",
    description=(
        "Cases of your organisation, newest first, with their deadlines. Page with "
        "`limit` and `cursor` (`next_cursor` of the previous page); filter with `status`. "
        "Which cases you see: those you are assigned to or that a reviewer shared with "
        "you; as a case manager or admin, every case routed to case managers; as a reviewer, "
        "every case (including those routed to reviewers because they involve leadership "
        "or someone above a case manager). Cases you are involved in, were excluded from by "
        "the reporter, recused yourself from, or that involve someone you manage never "
        "appear, whatever your role or assignment. Every listing is audited."
    ),
    response_model=CasePage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_cases(
    ctx: CaseCtx,
    status: CaseStatus | None = Query(None, description="Only cases in this state."),
    page: PageParams = Depends(page_params),
) -> CasePage:
    cases, next_cursor = await service.list_cases(
        ctx.session, ctx.principal, page=page, status=status
    )
    await ctx.audit("case.list", detail={"case_ids": [str(case.id) for case in cases]})
    return CasePage(items=[CaseOut.model_validate(case) for case in cases], next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}",
    operation_id="get_case",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="Get a case",
    description=(
        "One case of your organisation. The `ETag` header is its version. A case hidden "
        "from you (see `list_cases`) is 404, as if it did not exist."
    ),
    response_model=CaseOut,
    responses={
        200: {
            "headers": {
                "ETag": {
                    "description": 'The case\'s version, e.g. `"3"`.',
                    "schema": {"type": "string"},
                }
            }
        },
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_case(case: VisibleCase, ctx: CaseCtx, response: Response) -> CaseOut:
    await ctx.audit("case.read", case)
    response.headers["ETag"] = f'"{case.version}"'
    return CaseOut.model_validate(case)
