"""Admin route of the send log."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_scope
from upstander.notify.deliveries import service
from upstander.notify.deliveries.schemas import DeliveryOut

router = make_router(prefix="/notify/v1/deliveries", tags=["deliveries"])


@router.get(
    "",
    operation_id="list_deliveries",
    dependencies=[require_scope(Scope.NOTIFICATIONS_MANAGE)],
    summary="Every notification tried in your org: what, to whom, how, outcome (no content)",
    response_model=Page[DeliveryOut],
    responses=problem_responses(400),
)
async def list_deliveries(
    channel: Literal["inbox", "email", "webhook"] | None = Query(None),
    status: Literal["pending", "batched", "failed", "sent", "dead"] | None = Query(None),
    person_id: uuid.UUID | None = Query(None),
    event_id: uuid.UUID | None = Query(None),
    params: PageParams = Depends(page_params),
    principal: Principal = require_roles("admin"),
    session: AsyncSession = Depends(get_session),
) -> Page[DeliveryOut]:
    assert principal.org_id is not None
    rows, next_cursor = await service.list_deliveries(
        session,
        principal.org_id,
        params,
        channel=channel,
        status=status,
        person_id=person_id,
        event_id=event_id,
    )
    return Page[DeliveryOut](
        items=[DeliveryOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )
