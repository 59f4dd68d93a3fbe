"""Routes of the conversation on a case, for its handlers (subject to case visibility)."""

from __future__ import annotations

from fastapi import Depends

from upstander.cases.access import CaseCtx, LockedCase, VisibleCase, case_router
from upstander.cases.messages import service
from upstander.cases.messages.schemas import HandlerMessageIn, MessageOut, MessagePage
from upstander.cases.models import AuthorKind
from upstander.kit.auth import PrincipalKind
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["messages"])


@router.get(
    "/cases/{case_id}/messages",
    operation_id="list_case_messages",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="List a case's messages",
    description=(
        "The conversation with the reporter, oldest first. Page with `limit` and `cursor`."
    ),
    response_model=MessagePage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_case_messages(
    case: VisibleCase, ctx: CaseCtx, page: PageParams = Depends(page_params)
) -> MessagePage:
    messages, next_cursor = await service.list_messages(ctx.session, case, page)
    await ctx.audit("message.list", case)
    return MessagePage(
        items=[MessageOut.model_validate(m) for m in messages], next_cursor=next_cursor
    )


@router.post(
    "/cases/{case_id}/messages",
    operation_id="create_case_message",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Write to the reporter",
    description=(
        "Send the reporter a message. They read it with their receipt code and see it as "
        "from a handler, never by name. Mark it `is_feedback` when it tells them what is "
        "being done: that is the feedback the law requires by `feedback_by`."
    ),
    status_code=201,
    response_model=MessageOut,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def create_case_message(
    # Locked: a message marked `is_feedback` stamps the case's `feedback_sent_at`.
    case: LockedCase,
    message: HandlerMessageIn,
    ctx: CaseCtx,
) -> MessageOut:
    principal = ctx.principal
    created = await service.post_message(
        ctx.session,
        case,
        author=AuthorKind.HANDLER,
        body=message.body,
        author_person_id=principal.person_id if principal.kind == PrincipalKind.STAFF else None,
        is_feedback=message.is_feedback,
        vault=ctx.vault,
        events=ctx.events,
        now=ctx.now,
    )
    await ctx.audit(
        "message.create",
        case,
        detail={"message_id": str(created.id), "is_feedback": message.is_feedback},
    )
    return MessageOut.model_validate(created)
