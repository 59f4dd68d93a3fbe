"""Reading the send log of an org."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.pagination import PageParams, paginate
from upstander.notify.models import Delivery


async def list_deliveries(
    session: AsyncSession,
    org_id: uuid.UUID,
    params: PageParams,
    *,
    channel: str | None = None,
    status: str | None = None,
    person_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> tuple[list[Delivery], str | None]:
    """Newest first, keyset-paged by (created_at, id)."""
    statement = select(Delivery).where(Delivery.org_id == org_id)
    if channel is not None:
        statement = statement.where(Delivery.channel == channel)
    if status is not None:
        statement = statement.where(Delivery.status == status)
    if person_id is not None:
        statement = statement.where(Delivery.person_id == person_id)
    if event_id is not None:
        statement = statement.where(Delivery.event_id == event_id)
    return await paginate(session, statement, Delivery, params, descending=True)
