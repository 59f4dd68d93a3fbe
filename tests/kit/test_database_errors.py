"""A database that cannot answer is a 503 `database-unavailable` problem with `Retry-After`,
never a 500: in a route, in the kit's own middleware, at the gateway (passed through from a
service, or its own database), and on `/readyz`; while a database error that is a bug (bad
SQL, a broken constraint) stays a 500. Fast and in-process: an SQLite file that cannot be
opened and a PostgreSQL port nobody listens on stand in for a database that is down;
tests/e2e/test_database_outage.py stops and freezes a real PostgreSQL server."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI
from helpers import TokenMinter, sqlite_template
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.app import ServiceSpec, create_service_app, make_router
from upstander.kit.db import (
    Base,
    DatabaseTimeouts,
    IdMixin,
    get_session,
    is_database_unavailable,
    make_engine,
    make_metadata,
    make_sessionmaker,
)
from upstander.kit.errors import PROBLEM_JSON, problem_responses
from upstander.kit.idempotency import idempotency_table
from upstander.kit.settings import KitSettings
from upstander.kit.testing import RoutingTransport

UNAVAILABLE = "https://upstander.dev/problems/database-unavailable"
INTERNAL = "https://upstander.dev/problems/internal-error"


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


class Item(IdMixin, Model):
    __tablename__ = "items"
    name: Mapped[str] = mapped_column(String(50))


IdempotencyKey = idempotency_table(Model)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "a"}]})
    name: str = Field(max_length=50)


class ItemOut(BaseModel):
    id: uuid.UUID
    name: str


class ItemPage(BaseModel):
    items: list[ItemOut]


def _service(database_url: str, minter: TokenMinter, prefix: str = "/demo") -> FastAPI:
    """A small kit service: a list route, a write route with a body, and routes that fail
    with errors that are bugs."""
    router = make_router(prefix=f"{prefix}/v1", tags=["items"])

    @router.get(
        "/items",
        operation_id="list_items",
        summary="List items",
        description="Every item.",
        response_model=ItemPage,
        responses=problem_responses(503),
    )
    async def list_items(session: AsyncSession = Depends(get_session)) -> ItemPage:
        rows = (await session.scalars(select(Item))).all()
        return ItemPage(items=[ItemOut(id=row.id, name=row.name) for row in rows])

    @router.post(
        "/items",
        operation_id="create_item",
        summary="Create an item",
        description="A new item.",
        response_model=ItemOut,
        status_code=201,
        responses=problem_responses(503),
    )
    async def create_item(body: ItemIn, session: AsyncSession = Depends(get_session)) -> ItemOut:
        item = Item(name=body.name)
        session.add(item)
        await session.flush()
        return ItemOut(id=item.id, name=item.name)

    @router.get(
        "/bad-sql",
        operation_id="bad_sql",
        summary="Run bad SQL",
        description="A bug: a table that does not exist.",
        response_model=ItemPage,
    )
    async def bad_sql(session: AsyncSession = Depends(get_session)) -> ItemPage:
        await session.execute(text("SELECT * FROM no_such_table"))
        return ItemPage(items=[])

    @router.get(
        "/file-error",
        operation_id="file_error",
        summary="Fail on a file",
        description="A bug outside the database: an OSError from a missing file.",
        response_model=ItemPage,
    )
    async def file_error() -> ItemPage:
        Path("/nonexistent/upstander/file").read_bytes()
        return ItemPage(items=[])

    spec = ServiceSpec(
        name="demo",
        title="Demo",
        description="A kit service for the database error tests.",
        metadata=Model.metadata,
        routers=[router],
        idempotency_table=IdempotencyKey,
    )
    settings = KitSettings(
        database_url=database_url, log_json=False, log_level="ERROR", migrate_on_start=False
    )
    return create_service_app(settings, spec, transport=minter.transport())


def _closed_port() -> int:
    """A local port nobody listens on: connecting to it is refused, as a stopped server's is."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stopped_postgresql_url() -> str:
    return f"postgresql+asyncpg://upstander@127.0.0.1:{_closed_port()}/upstander"


def _client(app: FastAPI, base_url: str = "http://test") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def sqlite_app(tmp_path: Path, minter: TokenMinter) -> AsyncIterator[FastAPI]:
    app = _service(f"sqlite+aiosqlite:///{tmp_path}/demo.db", minter)
    async with LifespanManager(app):
        async with app.state.engine.begin() as connection:
            await connection.run_sync(Model.metadata.create_all)
        yield app


@pytest.fixture
async def stopped_postgresql_app(minter: TokenMinter) -> AsyncIterator[FastAPI]:
    app = _service(_stopped_postgresql_url(), minter)
    async with LifespanManager(app):
        yield app


def _assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["type"] == UNAVAILABLE
    assert body["status"] == 503
    # Nothing about the failure itself reaches the caller.
    assert "sqlite" not in response.text.lower()
    assert "select" not in response.text.lower()


async def _unopenable(app: FastAPI, tmp_path: Path) -> None:
    """Point the running app at an SQLite file in a folder that does not exist."""
    await app.state.engine.dispose()
    app.state.engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/demo.db")
    app.state.sessionmaker = make_sessionmaker(app.state.engine)


async def test_database_error_raised_in_a_route_answers_503_database_unavailable(
    sqlite_app: FastAPI, tmp_path: Path
) -> None:
    async with _client(sqlite_app) as client:
        assert (await client.post("/demo/v1/items", json={"name": "a"})).status_code == 201
        await _unopenable(sqlite_app, tmp_path)

        listed = await client.get("/demo/v1/items")
        created = await client.post("/demo/v1/items", json={"name": "b"})

    _assert_database_unavailable(listed)
    _assert_database_unavailable(created)
    assert listed.json()["instance"] == "/demo/v1/items"


async def test_stopped_postgresql_answers_503_with_retry_after_on_every_route_at_once(
    stopped_postgresql_app: FastAPI,
) -> None:
    async with _client(stopped_postgresql_app) as client:
        started = time.monotonic()
        listed = await client.get("/demo/v1/items")
        created = await client.post("/demo/v1/items", json={"name": "a"})
        elapsed = time.monotonic() - started
        ready = await client.get("/readyz")

    _assert_database_unavailable(listed)
    _assert_database_unavailable(created)
    assert elapsed < 5.0
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"


async def test_database_failure_in_the_idempotency_middleware_answers_503(
    stopped_postgresql_app: FastAPI, minter: TokenMinter
) -> None:
    token = minter.mint(org=uuid.uuid4(), roles=["admin"])
    async with _client(stopped_postgresql_app) as client:
        response = await client.post(
            "/demo/v1/items",
            json={"name": "a"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "key-1"},
        )

    _assert_database_unavailable(response)


async def test_bad_sql_in_a_route_stays_a_500(sqlite_app: FastAPI) -> None:
    async with _client(sqlite_app) as client:
        response = await client.get("/demo/v1/bad-sql")

    assert response.status_code == 500
    assert response.json()["type"] == INTERNAL
    assert "retry-after" not in response.headers


async def test_os_error_outside_database_code_stays_a_500(sqlite_app: FastAPI) -> None:
    async with _client(sqlite_app) as client:
        response = await client.get("/demo/v1/file-error")

    assert response.status_code == 500
    assert response.json()["type"] == INTERNAL


async def test_every_route_of_a_kit_router_documents_the_503(sqlite_app: FastAPI) -> None:
    async with _client(sqlite_app) as client:
        schema = (await client.get("/demo/openapi.json")).json()

    operations = [
        operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if path.startswith("/demo/v1/") and method in ("get", "post")
    ]
    assert operations
    assert all("503" in operation["responses"] for operation in operations)


# ----------------------------------------------------------------------------- the gateway


@pytest.fixture
async def gateway_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The gateway on its own SQLite file (a copy of the run's migrated template, no demo
    data), with a stand-in cases service whose PostgreSQL is stopped."""
    from upstander.gateway.app import create_app
    from upstander.gateway.settings import Settings

    shutil.copyfile(await sqlite_template("gateway"), tmp_path / "gateway.db")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        log_json=False,
        log_level="ERROR",
        relay_background=False,
        migrate_on_start=False,
        bootstrap_demo=False,
    )
    cases = _service(_stopped_postgresql_url(), TokenMinter(), prefix="/cases")
    routing = RoutingTransport({settings.cases_url: cases})
    app = create_app(settings, transport=routing)
    async with LifespanManager(cases), LifespanManager(app, startup_timeout=60):
        yield app


async def test_gateway_passes_a_service_503_through_with_retry_after(
    gateway_app: FastAPI,
) -> None:
    async with _client(gateway_app, "http://127.0.0.1:8000") as client:
        response = await client.get("/cases/v1/items")

    _assert_database_unavailable(response)


async def test_gateway_answers_503_when_its_own_database_is_unavailable(
    gateway_app: FastAPI,
) -> None:
    await gateway_app.state.engine.dispose()
    gateway_app.state.engine = make_engine(_stopped_postgresql_url(), timeouts=DatabaseTimeouts())
    gateway_app.state.sessionmaker = make_sessionmaker(gateway_app.state.engine)

    async with _client(gateway_app, "http://127.0.0.1:8000") as client:
        signed_in = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "admin@demo.example",
                "password": "upstander-demo",
            },
        )
        ready = await client.get("/readyz")

    _assert_database_unavailable(signed_in)
    assert ready.status_code == 503


# ----------------------------------------------------------------------------- the classifier


def _wrapped(orig: Exception, **kwargs: Any) -> sa_exc.DBAPIError:
    """An error as SQLAlchemy raises it: the driver's error wrapped, and chained."""
    try:
        raise sa_exc.DBAPIError.instance("SELECT 1", {}, orig, Exception, **kwargs) from orig
    except sa_exc.DBAPIError as error:
        return error


def _asyncpg(name: str) -> Exception:
    import asyncpg.exceptions

    error: Exception = getattr(asyncpg.exceptions, name)("simulated")
    return error


@pytest.mark.parametrize(
    ("make_error", "unavailable"),
    [
        (lambda: _wrapped(Exception("gone"), connection_invalidated=True), True),
        (lambda: sa_exc.TimeoutError("QueuePool limit reached"), True),
        (lambda: _wrapped(_asyncpg("CannotConnectNowError")), True),
        (lambda: _wrapped(_asyncpg("AdminShutdownError")), True),
        (lambda: _wrapped(_asyncpg("ConnectionDoesNotExistError")), True),
        (lambda: _wrapped(_asyncpg("QueryCanceledError")), True),
        (lambda: _wrapped(_asyncpg("TooManyConnectionsError")), True),
        (lambda: _wrapped(sqlite3.OperationalError("database is locked")), True),
        (lambda: _wrapped(sqlite3.OperationalError("unable to open database file")), True),
        (lambda: _wrapped(sqlite3.OperationalError("no such table: items")), False),
        (lambda: _wrapped(sqlite3.InterfaceError("Error binding parameter 1")), False),
        (lambda: _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (lambda: _wrapped(_asyncpg("UniqueViolationError")), False),
        (lambda: _wrapped(_asyncpg("UndefinedTableError")), False),
        (lambda: ConnectionRefusedError(111, "refused"), False),  # not from database code
        (lambda: TimeoutError(), False),
        (lambda: ValueError("a bug"), False),
    ],
    ids=[
        "invalidated-connection",
        "pool-timeout",
        "cannot-connect-now",
        "admin-shutdown",
        "connection-does-not-exist",
        "statement-timeout",
        "too-many-connections",
        "sqlite-locked",
        "sqlite-unopenable",
        "sqlite-no-such-table",
        "sqlite-binding",
        "sqlite-integrity",
        "pg-unique-violation",
        "pg-undefined-table",
        "os-error-elsewhere",
        "timeout-elsewhere",
        "value-error",
    ],
)
def test_database_errors_are_told_from_bugs(make_error: Any, unavailable: bool) -> None:
    assert is_database_unavailable(make_error()) is unavailable
