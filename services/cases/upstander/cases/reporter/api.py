"""Routes for the reporter, with the token from `POST /auth/receipt` (one report)."""

from __future__ import annotations

from fastapi import Depends

from upstander.cases.access import ReporterCase, ReporterCtx
from upstander.cases.messages import service as messages
from upstander.cases.messages.schemas import MessageIn, ReporterMessageOut, ReporterMessagePage
from upstander.cases.models import AuthorKind
from upstander.cases.reporter.schemas import ReporterCaseOut
from upstander.kit.app import make_router
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import reporter_token

router = make_router(prefix="/cases/v1/reporter", tags=["reporter"])


@router.get(
    "/case",
    operation_id="get_reporter_case",
    dependencies=[reporter_token()],
    summary="Your case",
    description="The state and legal deadlines of the case your report opened.",
    response_model=ReporterCaseOut,
    responses=problem_responses(401, 403, 404),
)
async def get_reporter_case(case: ReporterCase) -> ReporterCaseOut:
    return ReporterCaseOut.model_validate(case)


@router.get(
    "/messages",
    operation_id="list_reporter_messages",
    dependencies=[reporter_token()],
    summary="Your conversation",
    description=(
        "Messages between you and the people handling your case, oldest first. Page with "
        "`limit` and `cursor`."
    ),
    response_model=ReporterMessagePage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_reporter_messages(
    case: ReporterCase, ctx: ReporterCtx, page: PageParams = Depends(page_params)
) -> ReporterMessagePage:
    items, next_cursor = await messages.list_messages(ctx.session, case, page)
    return ReporterMessagePage(
        items=[ReporterMessageOut.model_validate(m) for m in items], next_cursor=next_cursor
    )


@router.post(
    "/messages",
    operation_id="create_reporter_message",
    dependencies=[reporter_token()],
    summary="Write to the people handling your case",
    status_code=201,
    response_model=ReporterMessageOut,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def create_reporter_message(
    case: ReporterCase, message: MessageIn, ctx: ReporterCtx
) -> ReporterMessageOut:
    created = await messages.post_message(
        ctx.session,
        case,
        author=AuthorKind.REPORTER,
        body=message.body,
        vault=ctx.vault,
        events=ctx.events,
        now=ctx.now,
    )
    return ReporterMessageOut.model_validate(created)
