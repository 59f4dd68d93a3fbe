"""Routes of the in-app inbox: a person reads their own messages, nobody else's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, PrincipalKind, current_principal
from upstander.kit.db import get_session
from upstander.kit.errors import Forbidden, problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import require_person
from upstander.notify.inbox import service
from upstander.notify.inbox.schemas import InboxMessageOut, ReadAllResult, UnreadCount

router = make_router(prefix="/notify/v1/inbox", tags=["inbox"])


@dataclass(frozen=True)
class InboxOwner:
    org_id: uuid.UUID
    person_id: uuid.UUID


async def inbox_owner(principal: Principal = Depends(current_principal)) -> InboxOwner:
    """The inbox is a person's: API clients, reporters and services have none."""
    person_id = principal.person_id if principal.kind == PrincipalKind.STAFF else None
    if person_id is None or principal.org_id is None:
        raise Forbidden("The inbox belongs to a person; use a staff token.")
    return InboxOwner(org_id=principal.org_id, person_id=person_id)


@router.get(
    "",
    operation_id="list_inbox_messages",
    dependencies=[require_person()],
    summary="Your in-app messages, newest first",
    response_model=Page[InboxMessageOut],
    responses=problem_responses(400),
)
async def list_inbox_messages(
    unread_only: bool = Query(False, description="Only messages not yet read."),
    params: PageParams = Depends(page_params),
    owner: InboxOwner = Depends(inbox_owner),
    session: AsyncSession = Depends(get_session),
) -> Page[InboxMessageOut]:
    messages, next_cursor = await service.list_messages(
        session, owner.org_id, owner.person_id, params, unread_only=unread_only
    )
    return Page[InboxMessageOut](
        items=[InboxMessageOut.model_validate(m) for m in messages], next_cursor=next_cursor
    )


@router.get(
    "/unread-count",
    operation_id="count_unread_inbox_messages",
    dependencies=[require_person()],
    summary="How many of your messages are unread",
    response_model=UnreadCount,
)
async def count_unread_inbox_messages(
    owner: InboxOwner = Depends(inbox_owner),
    session: AsyncSession = Depends(get_session),
) -> UnreadCount:
    return UnreadCount(unread=await service.count_unread(session, owner.org_id, owner.person_id))


@router.post(
    "/read-all",
    operation_id="mark_all_inbox_messages_read",
    dependencies=[require_person()],
    summary="Mark every message in your inbox as read",
    response_model=ReadAllResult,
)
async def mark_all_inbox_messages_read(
    request: Request,
    owner: InboxOwner = Depends(inbox_owner),
    session: AsyncSession = Depends(get_session),
) -> ReadAllResult:
    marked = await service.mark_all_read(
        session, owner.org_id, owner.person_id, now=request.app.state.clock.now()
    )
    return ReadAllResult(marked_read=marked)


@router.post(
    "/{message_id}/read",
    operation_id="mark_inbox_message_read",
    dependencies=[require_person()],
    summary="Mark one of your messages as read",
    response_model=InboxMessageOut,
)
async def mark_inbox_message_read(
    message_id: uuid.UUID,
    request: Request,
    owner: InboxOwner = Depends(inbox_owner),
    session: AsyncSession = Depends(get_session),
) -> InboxMessageOut:
    message = await service.mark_read(
        session, owner.org_id, owner.person_id, message_id, now=request.app.state.clock.now()
    )
    return InboxMessageOut.model_validate(message)
