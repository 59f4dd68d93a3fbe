"""The kit's engine makes no round trip it does not need, and still ends every transaction.

SQLite (aiosqlite): ending a transaction that never opened (a read) costs no trip to the
connection's thread, neither the commit nor the pool's rollback on return; a write still
commits. PostgreSQL: a connection back in the pool a moment ago is used without a ping; one
idle past `PING_AFTER_IDLE_SECONDS` is pinged, and replaced before use when the server has
closed it meanwhile."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import helpers
import pytest
from sqlalchemy import text

from upstander.kit import db
from upstander.kit.db import make_engine, make_sessionmaker


@pytest.fixture
def sqlite_trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the driver was asked to commit or roll back (each a trip to its thread)."""
    trips: Counter[str] = Counter()
    for name in ("commit", "rollback"):
        original = getattr(aiosqlite.Connection, name)

        async def counted(self: Any, _name: str = name, _original: Any = original) -> None:
            trips[_name] += 1
            await _original(self)

        monkeypatch.setattr(aiosqlite.Connection, name, counted)
    return trips


async def test_a_sqlite_read_ends_without_a_trip_and_a_write_still_commits(
    tmp_path: Path, sqlite_trips: Counter[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}"
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
        sqlite_trips.clear()

        async with sessions() as session:  # a request that reads
            assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar() == 0
            await session.commit()
        assert sqlite_trips == Counter()

        async with sessions() as session:  # a request that writes
            await session.execute(text("INSERT INTO notes VALUES ('kept')"))
            await session.commit()
        assert sqlite_trips["commit"] == 1

        async with sessions() as session:  # a write abandoned
            await session.execute(text("INSERT INTO notes VALUES ('dropped')"))
        assert sqlite_trips["rollback"] == 1
    finally:
        await engine.dispose()

    other = make_engine(url)  # another connection sees what was committed, only that
    try:
        async with other.connect() as connection:
            rows = (await connection.execute(text("SELECT body FROM notes"))).scalars().all()
        assert rows == ["kept"]
    finally:
        await other.dispose()


async def test_postgresql_pings_only_connections_idle_past_the_threshold(
    test_backend: str, monkeypatch: pytest.MonkeyPatch, pg_admin_url: str
) -> None:
    if test_backend != "postgresql":
        pytest.skip("PostgreSQL's pool")
    url = await helpers.fresh_pg_database(f"pings_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    pings: list[object] = []
    ping = engine.sync_engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", counted_ping)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)

    async def backend_pid() -> int:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    try:
        first = await backend_pid()
        assert await backend_pid() == first  # the same connection, back a moment ago
        assert pings == []

        # The server closes the idle connection (a restart, a failover, an idle timeout).
        admin = await asyncpg.connect(pg_admin_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it is now "idle long"
        replaced = await backend_pid()  # no error: the ping failed, a new connection served
        assert replaced != first
        assert len(pings) == 1
    finally:
        await engine.dispose()
