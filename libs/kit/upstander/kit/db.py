"""Async SQLAlchemy: the declarative base, common columns, engine and the per-request session;
and what "the database is unavailable" means (`is_database_unavailable`), so that a stopped or
frozen database is a 503 within seconds, never a 500 or a request that hangs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy import DateTime, Integer, MetaData, TypeDecorator, Uuid, event, exc
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.responses import Response

from upstander.kit.routing import dependants, original_routes, runtime_dependencies

if TYPE_CHECKING:
    from upstander.kit.settings import KitSettings

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


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long an app waits on its database before it gives up (and answers 503).

    A stopped server refuses connections at once; a frozen one (SIGSTOP, a dead host behind a
    live address, a saturated server) accepts the TCP connection and then says nothing, so
    without these every request would hang until the gateway's read timeout. Each bound is one
    step of a request: waiting for a pooled connection, opening a new one, running a statement
    (the pre-ping of a pooled connection is a statement too). The defaults keep a request on a
    frozen database under 5 s."""

    connect_seconds: float = 2.0
    statement_seconds: float = 3.0
    pool_seconds: float = 2.0

    @classmethod
    def from_settings(cls, settings: KitSettings) -> DatabaseTimeouts:
        return cls(
            connect_seconds=settings.database_connect_timeout_seconds,
            statement_seconds=settings.database_statement_timeout_seconds,
            pool_seconds=settings.database_pool_timeout_seconds,
        )


# The client gives the server this long past its own `statement_timeout` before it stops
# waiting: a live server then cancels the statement itself (the connection stays usable) and
# only a server that cannot answer at all meets the client's timeout.
_CLIENT_GRACE_SECONDS = 0.5


# Connections an app keeps open to PostgreSQL, and how many more it may open under load.
POOL_SIZE, POOL_OVERFLOW = 16, 14
SQLITE_POOL_SIZE = 16
# A PostgreSQL connection back in the pool for longer than this is pinged before its next use.
PING_AFTER_IDLE_SECONDS = 1.0


# SQLite URLs without a path: an in-memory database.
SQLITE_BARE_URLS = ("sqlite:", "sqlite+aiosqlite:")


def is_in_memory(url: str) -> bool:
    """A SQLite database in memory: each engine (each connection) has one of its own."""
    return ":memory:" in url or "mode=memory" in url or url.rstrip("/") in SQLITE_BARE_URLS


def make_engine(
    url: str,
    *,
    echo: bool = False,
    timeouts: DatabaseTimeouts | None = None,
    pool_size: int | None = None,
) -> AsyncEngine:
    """The engine of one app. `timeouts` bound every wait on a PostgreSQL server (the apps pass
    their settings'); without them (migrations, scripts) a statement may take as long as it
    needs. Bound parameters never appear in error messages or logs (`hide_parameters`): they
    can be report content, names or emails. `pool_size` (and as many more under load) for a
    small pool of its own; by default the app's."""
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
        if not is_in_memory(url):
            # A file database is pooled (aiosqlite: a thread per connection). Keep enough
            # connections for a busy worker: past `pool_size`, each request would open a
            # connection (a new thread, the pragmas) and close it again.
            size = SQLITE_POOL_SIZE if pool_size is None else pool_size
            kwargs.update(pool_size=size, max_overflow=size)
    else:
        # Same ceiling as before (30 per app), more of it kept open: a pool smaller than the
        # requests in flight opens and closes a connection per request past it.
        if pool_size is None:
            kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        if timeouts is not None:
            kwargs["pool_timeout"] = timeouts.pool_seconds
            if make_url(url).get_driver_name() == "asyncpg":
                kwargs["connect_args"] = {
                    "timeout": timeouts.connect_seconds,
                    "command_timeout": timeouts.statement_seconds + _CLIENT_GRACE_SECONDS,
                    "server_settings": {
                        "statement_timeout": str(int(timeouts.statement_seconds * 1000)),
                    },
                }
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        _skip_idle_transaction_ends(engine.sync_engine.dialect)
    else:
        _ping_idle_connections(engine.sync_engine)
    event.listen(engine.sync_engine, "handle_error", _drop_timed_out_connection)
    event.listen(engine.sync_engine, "invalidate", _abort_unresponsive_connection)
    return engine


def _sqlite_transaction_open(dbapi_connection: Any) -> bool:
    """Whether a SQLite connection has a transaction open, as sqlite3 itself tells (it opens
    one before the first INSERT, UPDATE or DELETE only); True when it cannot tell."""
    driver = getattr(dbapi_connection, "driver_connection", None)  # aiosqlite.Connection
    return bool(getattr(driver, "in_transaction", True))


def _skip_idle_transaction_ends(dialect: Any) -> None:
    """sqlite3's `commit()` and `rollback()` do nothing when no transaction is open (CPython
    asks SQLite first, `sqlite3_get_autocommit`), yet through aiosqlite each is a round trip
    to the connection's thread. A read paid two of them (its commit, then the pool's rollback
    on return) for nothing: ask the connection, as CPython would, before the trip."""
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        if _sqlite_transaction_open(dbapi_connection):
            commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        if _sqlite_transaction_open(dbapi_connection):
            rollback(dbapi_connection)

    dialect.do_commit = do_commit
    dialect.do_rollback = do_rollback


def _ping_idle_connections(engine: Any) -> None:
    """Ping a pooled connection before use when it has been idle for `PING_AFTER_IDLE_SECONDS`
    or more (a server restart, a failover or an idle timeout may have closed it meanwhile);
    one that fails the ping is replaced before the request sees it. `pool_pre_ping` pings on
    every checkout, a round trip more per request, even for a connection that answered a
    moment ago; one that fails in use anyway is dropped with its pool
    (`_drop_timed_out_connection`)."""
    dialect = engine.dialect

    @event.listens_for(engine.pool, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError("idle connection failed its ping") from error


def _drop_timed_out_connection(context: ExceptionContext) -> None:
    """A connection whose statement timed out or whose socket failed is in an unknown state:
    SQLAlchemy would roll it back (another wait on a frozen server, twice the time before the
    caller hears anything) and return it to the pool. Treat it as a lost connection instead:
    it is closed at once, and the pool's older connections are replaced before their next use
    (after an outage they are all dead)."""
    if isinstance(context.original_exception, (OSError, TimeoutError)):
        context.is_disconnect = True


def _abort_unresponsive_connection(
    dbapi_connection: Any, _record: Any, exception: BaseException | None
) -> None:
    """Drop a connection that timed out or failed at the socket without a goodbye: a polite
    close waits (2 s in SQLAlchemy's asyncpg adapter) for a server that may be frozen, and
    the caller waits with it."""
    if isinstance(exception, OSError | TimeoutError):
        terminate = getattr(getattr(dbapi_connection, "driver_connection", None), "terminate", None)
        if callable(terminate):
            terminate()


# SQLSTATE classes and codes that mean "the server cannot serve now", not "the query is wrong":
# 08 connection exception, 53300 too many connections, 57 operator intervention (57014 a
# cancelled statement: our own `statement_timeout`; 57P01..57P03 shutdown, crash, starting up).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57")
_UNAVAILABLE_SQLSTATES = frozenset({"53300"})
# sqlite3's OperationalError is also its error for bad SQL ("no such table", syntax): a bug
# that must stay a 500. Only these messages mean the file cannot be used right now.
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)
# Where an OSError or TimeoutError must have come from to be the database's.
_DATABASE_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "psycopg.", "sqlite3.")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then what caused it (`raise ... from`) or was being handled when it arose."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raised_in_database_code(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DATABASE_MODULES):
            return True
        traceback = traceback.tb_next
    return False


def _is_unavailable_sqlstate(error: BaseException) -> bool:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not isinstance(state, str):
        return False
    return state in _UNAVAILABLE_SQLSTATES or state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES


def is_database_unavailable(error: BaseException) -> bool:
    """True when `error` says the database cannot be reached or cannot answer now (stopped,
    frozen, restarting, out of connections, a lost or timed-out connection), as opposed to a
    bug (bad SQL, a constraint violated). Such errors become 503 `database-unavailable`."""
    for link in _chain(error):
        if isinstance(link, exc.DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, exc.TimeoutError | exc.DisconnectionError):
            return True  # no pooled connection in time; a connection lost on checkout
        if isinstance(link, sqlite3.Error):
            # sqlite3 reports bad SQL and bad parameters with these classes too: a bug, a 500.
            if isinstance(link, sqlite3.OperationalError) and str(link).lower().startswith(
                _SQLITE_UNAVAILABLE
            ):
                return True
            continue
        if isinstance(link, exc.OperationalError | exc.InterfaceError) and not isinstance(
            link.orig, sqlite3.Error
        ):
            return True  # a server that went away, or a driver connection that is closed
        if _is_unavailable_sqlstate(link):
            return True
        if isinstance(link, OSError | TimeoutError) and _raised_in_database_code(
            link.__traceback__
        ):
            return True
    return False


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncSession:
    """One session per request, for routes of `CommittingRoute` (or a subclass): the route
    commits it before the response is sent and closes it however the request ends, and
    `check_session_routes` refuses, at start-up, any other route that asks for it. A plain
    dependency, not a generator: FastAPI's exit stack for one costs more per request than the
    query of a simple read (docs/performance.md)."""
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    if session is None:
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
        session = sessionmaker()
        request.state.db_session = session
    return session


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """`INSERT` into `table` with `ON CONFLICT` clauses (`on_conflict_do_nothing`,
    `on_conflict_do_update`), in the dialect of the session's database: PostgreSQL's or
    SQLite's. The dialect's module is imported when first asked for, so that an app on SQLite
    never loads PostgreSQL's (its modules are 2-3 MB of memory: docs/performance.md)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _nothing_to_commit(session: AsyncSession) -> bool:
    """Whether committing `session` would change nothing: no ORM change waits to be flushed
    and its SQLite connection never began a write transaction (`_sqlite_transaction_open`; a
    read leaves none open). Closing the session then
    ends the request as the commit would, without SQLAlchemy's commit bookkeeping (about 100
    µs of a read's 1.5 ms: docs/performance.md). On PostgreSQL a transaction may hold writes
    the session cannot see (Core statements): always committed."""
    sync = session.sync_session
    if sync.new or sync.dirty or sync.deleted:
        return False
    connections = getattr(sync.get_transaction(), "_connections", None)
    if not connections:
        return False
    try:
        for connection, *_ in connections.values():
            if connection.dialect.name != "sqlite":
                return False
            if _sqlite_transaction_open(connection.connection.dbapi_connection):
                return False
    except Exception:  # a connection closed or invalidated meanwhile: let the commit say how
        return False
    return True


class CommittingRoute(APIRoute):
    """Commit the request's session after the endpoint returns and before the response leaves,
    so a failed commit is an error response, never a 200 for lost work (Polar's pattern); close
    it whatever happened (a transaction still open is rolled back). A streamed body reads
    with sessions of its own, as it runs after this."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        with runtime_dependencies(self):
            handler = super().get_route_handler()

        async def committing_handler(request: Request) -> Response:
            try:
                response = await handler(request)
                session: AsyncSession | None = getattr(request.state, "db_session", None)
                after = getattr(request.state, "after_commit", None)
                if (
                    session is not None
                    and session.in_transaction()
                    and (after or not _nothing_to_commit(session))
                ):
                    await session.commit()
                    if after:
                        for callback in after:
                            callback()
                return response
            finally:
                opened: AsyncSession | None = getattr(request.state, "db_session", None)
                if opened is not None:
                    await _close_shielded(opened)

        return committing_handler


_closing: set[asyncio.Task[None]] = set()


async def _close_shielded(session: AsyncSession) -> None:
    """Close the session even when the request is cancelled meanwhile: its connection goes
    back to the pool (an open transaction rolled back) whatever happens to the request."""
    closing = asyncio.ensure_future(session.close())
    _closing.add(closing)  # a strong reference until it is done (asyncio keeps weak ones)
    closing.add_done_callback(_closing.discard)
    await asyncio.shield(closing)


def check_session_routes(app: Any) -> None:
    """Refuse to start when a route that is not a `CommittingRoute` asks for `get_session`:
    nothing would commit or close its session."""
    wrong = sorted(
        f"{', '.join(sorted(route.methods or ()))} {route.path}"
        for route in original_routes(app.router.routes)
        if isinstance(route, APIRoute)
        and not isinstance(route, CommittingRoute)
        and any(node.call is get_session for node in dependants(route.dependant))
    )
    if wrong:
        raise RuntimeError(
            "routes asking for get_session must be CommittingRoutes (make_router): "
            + "; ".join(wrong)
        )


def after_commit(request: Request, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (e.g. wake the relay)."""
    if not hasattr(request.state, "after_commit"):
        request.state.after_commit = []
    request.state.after_commit.append(callback)
