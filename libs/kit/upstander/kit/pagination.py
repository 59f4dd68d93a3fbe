"""Keyset pagination: `?limit=&cursor=` → `{items, next_cursor}`, ordered by (created_at, id)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
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


# Longer than any cursor the platform makes (about 110 characters), shorter than anything
# worth decoding.
MAX_CURSOR_LENGTH = 300
_MAX_TIMESTAMP_LENGTH = 40


class InvalidCursor(BadRequest):
    """A `cursor` the platform did not make: pass `next_cursor` back as it was given."""

    status, slug, title = 400, "invalid-cursor", "Invalid cursor"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The cursor is not valid; pass a page's `next_cursor` as is.")


def cursor_query(description: str = "`next_cursor` of a page.") -> Any:
    """The `cursor` query parameter. Its length limit is documented here but enforced by the
    decoders, so an over-long cursor is the same 400 `invalid-cursor` as any other bad one."""
    return Query(None, description=description, json_schema_extra={"maxLength": MAX_CURSOR_LENGTH})


async def page_params(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page."),
    cursor: str | None = cursor_query(),
) -> PageParams:
    # async: a plain function would run in the thread pool, a thread hop per list request.
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_values(cursor: str, count: int) -> list[Any]:
    """The JSON array of `count` values inside a base64url cursor. With `cursor_time` and
    `cursor_id`, the parts of any keyset cursor's decoder: each refuses what it cannot read
    with a 400 `invalid-cursor` problem."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor()
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        values = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # binascii and Unicode errors are ValueErrors
        raise InvalidCursor() from exc
    if not isinstance(values, list) or len(values) != count:
        raise InvalidCursor()
    return values


def cursor_time(value: Any) -> datetime:
    """A timezone-aware instant, in UTC. A naive one is refused: compared with the stored
    (aware) times it would fail in the database, not here."""
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP_LENGTH:
        raise InvalidCursor()
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidCursor("The cursor's time has no time zone.")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor() from exc


def cursor_id(value: Any) -> uuid.UUID:
    """A row id: a UUID written as a string."""
    if not isinstance(value, str):
        raise InvalidCursor()
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidCursor() from exc


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) keyset position of `encode_cursor`; anything else is a 400
    `invalid-cursor` problem."""
    at, row_id = cursor_values(cursor, 2)
    return cursor_time(at), cursor_id(row_id)


def decode_ranked_cursor(cursor: str, ranks: Collection[int]) -> tuple[int, datetime, uuid.UUID]:
    """A (rank, created_at, id) position, for pages ordered by a small rank first (one of
    `ranks`); anything else is a 400 `invalid-cursor` problem."""
    rank, at, row_id = cursor_values(cursor, 3)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank not in ranks:
        raise InvalidCursor()
    return rank, cursor_time(at), cursor_id(row_id)


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
