"""The request's session: a `CommittingRoute` commits it before the response and closes it
however the request ends (its connection back in the pool, an unfinished transaction rolled
back), and an app whose other routes ask for it refuses to start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from upstander.kit.db import (
    CommittingRoute,
    check_session_routes,
    get_session,
    make_engine,
    make_sessionmaker,
)

WRITTEN = asyncio.Event()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'session.db'}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield engine
    await engine.dispose()


def _app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    app.state.sessionmaker = make_sessionmaker(engine)
    router = APIRouter(route_class=CommittingRoute)

    @router.post("/notes/{body}")
    async def write(body: str, session: AsyncSession = Depends(get_session)) -> dict[str, str]:
        await session.execute(text("INSERT INTO notes VALUES (:body)"), {"body": body})
        if body == "fails":
            raise RuntimeError("after writing")
        if body == "hangs":
            WRITTEN.set()
            await asyncio.Event().wait()  # until the request is cancelled
        return {"kept": body}

    @router.get("/notes")
    async def read(session: AsyncSession = Depends(get_session)) -> list[str]:
        return list((await session.execute(text("SELECT body FROM notes"))).scalars())

    app.include_router(router)
    check_session_routes(app)
    return app


async def test_the_route_commits_and_closes_its_session_however_the_request_ends(
    engine: AsyncEngine,
) -> None:
    transport = httpx.ASGITransport(app=_app(engine), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        assert (await client.post("/notes/kept")).status_code == 200
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert (await client.post("/notes/fails")).status_code == 500
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert (await client.get("/notes")).json() == ["kept"]  # the failed write rolled back
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_cancelled_request_still_gives_its_connection_back(engine: AsyncEngine) -> None:
    WRITTEN.clear()
    transport = httpx.ASGITransport(app=_app(engine), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        request = asyncio.create_task(client.post("/notes/hangs"))
        await asyncio.wait_for(WRITTEN.wait(), 10)
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        for _ in range(100):  # the shielded close runs on by itself
            if engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert (await client.get("/notes")).json() == []  # the write was rolled back


def test_an_app_whose_plain_route_asks_for_the_session_refuses_to_start(
    engine: AsyncEngine,
) -> None:
    app = _app(engine)

    @app.get("/plain")
    async def plain(session: AsyncSession = Depends(get_session)) -> None:
        return None

    with pytest.raises(RuntimeError, match=r"CommittingRoutes .*GET /plain"):
        check_session_routes(app)


async def test_a_read_on_sqlite_ends_without_a_commit_and_a_write_is_committed(
    engine: AsyncEngine,
) -> None:
    """A read leaves no transaction open on SQLite: closing the session ends it, with no
    commit (SQLAlchemy's bookkeeping for nothing). A Core write, which the session's ORM state
    does not show, is still committed."""
    commits: list[str] = []
    app = _app(engine)

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def committed(_session: Session) -> None:
        commits.append("commit")

    event.listen(Session, "after_commit", committed)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
            assert (await client.get("/notes")).json() == []
            assert commits == []
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            assert (await client.post("/notes/written")).status_code == 200
            assert commits == ["commit"]
            assert (await client.get("/notes")).json() == ["written"]
            assert commits == ["commit"]
        async with engine.connect() as connection:  # on the file, from another connection
            found = (await connection.execute(text("SELECT body FROM notes"))).scalars().all()
        assert found == ["written"]
    finally:
        event.remove(Session, "after_commit", committed)
