"""Routes of the conversation on a case, for its handlers (subject to case visibility)."""

from __future__ import annotations

import uuid

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import record
from upstander.cases.cases.service import visible_case
from upstander.cases.messages import service
from upstander.cases.messages.schemas import HandlerMessageIn, MessageOut, MessagePage
from upstander.cases.models import AuthorKind
from upstander.cases.roles import HANDLERS
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, PrincipalKind, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params

router = make_router(prefix="/cases/v1", tags=["messages"])


@router.get(
    "/cases/{case_id}/messages",
    operation_id="list_case_messages",
    summary="List a case's messages",
    description=(
        "The conversation with the reporter, oldest first. Page with `limit` and `cursor`."
    ),
    response_model=MessagePage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_case_messages(
    case_id: uuid.UUID,
    request: Request,
    page: PageParams = Depends(page_params),
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> MessagePage:
    case = await visible_case(session, principal, case_id)
    messages, next_cursor = await service.list_messages(session, case, page)
    await record(
        session, principal, "message.list", at=request.app.state.clock.now(), case_id=case.id
    )
    return MessagePage(
        items=[MessageOut.model_validate(m) for m in messages], next_cursor=next_cursor
    )


@router.post(
    "/cases/{case_id}/messages",
    operation_id="create_case_message",
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
    case_id: uuid.UUID,
    message: HandlerMessageIn,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> MessageOut:
    case = await visible_case(session, principal, case_id, for_update=message.is_feedback)
    now = request.app.state.clock.now()
    created = await service.post_message(
        session,
        case,
        author=AuthorKind.HANDLER,
        body=message.body,
        author_person_id=principal.person_id if principal.kind == PrincipalKind.STAFF else None,
        is_feedback=message.is_feedback,
        vault=request.app.state.vault,
        events=request.app.state.events,
        now=now,
    )
    await record(
        session,
        principal,
        "message.create",
        at=now,
        case_id=case.id,
        detail={"message_id": str(created.id), "is_feedback": message.is_feedback},
    )
    return MessageOut.model_validate(created)
