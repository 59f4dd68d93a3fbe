"""Routes of case files, for the people who handle them."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import record
from upstander.cases.cases import service
from upstander.cases.cases.schemas import CaseOut, CasePage
from upstander.cases.models import CaseStatus
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params

router = make_router(prefix="/cases/v1", tags=["cases"])

HANDLERS = (Role.CASE_MANAGER, Role.INVESTIGATOR, Role.REVIEWER, Role.ADMIN)


@router.get(
    "/cases",
    operation_id="list_cases",
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
    request: Request,
    status: CaseStatus | None = Query(None, description="Only cases in this state."),
    page: PageParams = Depends(page_params),
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> CasePage:
    cases, next_cursor = await service.list_cases(session, principal, page=page, status=status)
    await record(
        session,
        principal,
        "case.list",
        at=request.app.state.clock.now(),
        detail={"case_ids": [str(case.id) for case in cases]},
    )
    return CasePage(items=[CaseOut.model_validate(case) for case in cases], next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}",
    operation_id="get_case",
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
async def get_case(
    case_id: uuid.UUID,
    request: Request,
    response: Response,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> CaseOut:
    case = await service.visible_case(session, principal, case_id)
    await record(session, principal, "case.read", at=request.app.state.clock.now(), case_id=case.id)
    response.headers["ETag"] = f'"{case.version}"'
    return CaseOut.model_validate(case)
