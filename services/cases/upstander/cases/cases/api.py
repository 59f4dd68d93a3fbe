"""Routes of case files, for the people who handle them."""

from __future__ import annotations

from datetime import datetime

from fastapi import Depends, Query, Response

from upstander.cases.access import CaseCtx, VisibleCase, case_router
from upstander.cases.cases import service
from upstander.cases.cases.schemas import CaseOut, CasePage
from upstander.cases.models import CaseStatus
from upstander.cases.sync import service as sync_service
from upstander.kit.errors import BadRequest, problem_responses
from upstander.kit.external_refs import parse_external_ref
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
        "`limit` and `cursor` (`next_cursor` of the previous page); filter with `status`, "
        "`updated_since` and `external_ref`. "
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
    updated_since: datetime | None = Query(
        None,
        description=(
            "Only cases whose record (status, severity, priority, routing, deadlines...) "
            "changed at or after this instant (ISO 8601 with a time zone). For a sync, "
            "prefer the change feed (`GET /cases/v1/changes`), which also sees assignments."
        ),
        examples=["2026-11-30T00:00:00Z"],
    ),
    external_ref: str | None = Query(
        None,
        max_length=265,
        description="Only the case another system calls this: `<system>:<id>`.",
        examples=["workday:E-1042"],
    ),
    page: PageParams = Depends(page_params),
) -> CasePage:
    if updated_since is not None and updated_since.utcoffset() is None:
        raise BadRequest("updated_since needs a time zone, e.g. `2026-11-30T00:00:00Z`.")
    conditions = []
    if external_ref is not None:
        system, external_id = parse_external_ref(external_ref)
        conditions.append(sync_service.external_ref_condition(ctx.org_id, system, external_id))
    cases, next_cursor = await service.list_cases(
        ctx.session,
        ctx.principal,
        page=page,
        status=status,
        updated_since=updated_since,
        conditions=conditions,
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
