"""Async SQLAlchemy: the declarative base, common columns, engine and the per-request session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy import DateTime, Integer, MetaData, TypeDecorator, Uuid, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.responses import Response

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def _now() -> datetime:
    return datetime.now(UTC)


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    """Abstract base. Each service declares its own, with its own metadata:

    class Model(Base):
        __abstract__ = True
        metadata = make_metadata()
    """

    __abstract__ = True


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)


class OrgMixin:
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)


class VersionMixin:
    """A row version, bumped on every update; it is the ETag of the resource. Models that use it
    declare `__mapper_args__ = {"version_id_col": version}` in their class body so a concurrent
    stale write fails (StaleDataError → 412)."""

    version: Mapped[int] = mapped_column(Integer, default=1)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. `CommittingRoute` commits it before the response is sent."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        request.state.db_session = session
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


class CommittingRoute(APIRoute):
    """Commit the request's session after the endpoint returns and before the response leaves,
    so a failed commit is an error response, never a 200 for lost work (Polar's pattern)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def committing_handler(request: Request) -> Response:
            response = await handler(request)
            session: AsyncSession | None = getattr(request.state, "db_session", None)
            if session is not None and session.in_transaction():
                await session.commit()
                after = getattr(request.state, "after_commit", None)
                if after:
                    for callback in after:
                        callback()
            return response

        return committing_handler


def after_commit(request: Request, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (e.g. wake the relay)."""
    if not hasattr(request.state, "after_commit"):
        request.state.after_commit = []
    request.state.after_commit.append(callback)
