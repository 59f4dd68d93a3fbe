"""Keyset pagination: `?limit=&cursor=` → `{items, next_cursor}`, ordered by (created_at, id)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def page_params(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
    cursor: str | None = Query(None, max_length=200, description="`next_cursor` of a page."),
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), uuid.UUID(row_id)
    except (ValueError, TypeError) as exc:
        raise BadRequest("The cursor is not valid.") from exc


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    model: Any,
    params: PageParams,
    *,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    """Run `statement` (already filtered and org-scoped) one page at a time."""
    created, ident = model.created_at, model.id
    if params.cursor:
        at, after_id = decode_cursor(params.cursor)
        if descending:
            condition = or_(created < at, and_(created == at, ident < after_id))
        else:
            condition = or_(created > at, and_(created == at, ident > after_id))
        statement = statement.where(condition)
    order = (created.desc(), ident.desc()) if descending else (created.asc(), ident.asc())
    rows = list((await session.scalars(statement.order_by(*order).limit(params.limit + 1))).all())
    next_cursor = None
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.created_at, last.id)
    return rows, next_cursor
