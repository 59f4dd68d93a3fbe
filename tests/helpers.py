"""Helpers the whole suite shares: the test database backend and fresh PostgreSQL databases.

`UPSTANDER_TEST_BACKEND` chooses the backend: `sqlite` (default) or `postgresql`.
`UPSTANDER_TEST_PG_URL` is the PostgreSQL server's admin URL
(default `postgresql://postgres@127.0.0.1:5432/postgres`); fresh databases are made beside it.
"""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import URL, make_url

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def selected_backend() -> str:
    backend = os.environ.get("UPSTANDER_TEST_BACKEND", "sqlite").strip().lower() or "sqlite"
    if backend not in BACKENDS:
        raise ValueError(f"UPSTANDER_TEST_BACKEND must be one of {BACKENDS}, not {backend!r}")
    return backend


def pg_admin_url() -> str:
    """The admin URL as plain libpq/asyncpg understands it (`postgresql://...`)."""
    url = make_url(os.environ.get("UPSTANDER_TEST_PG_URL", DEFAULT_PG_URL))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def pg_database_url(name: str) -> str:
    """The SQLAlchemy (asyncpg) URL of database `name` on the test server."""
    url: URL = make_url(pg_admin_url()).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def _checked(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"not a safe database name: {name!r} (lower case, digits, _)")
    return name


async def fresh_pg_database(name: str) -> str:
    """Drop database `name` if it exists (disconnecting whoever uses it), create it empty,
    and return its `postgresql+asyncpg://` URL."""
    import asyncpg

    name = _checked(name)
    connection = await asyncpg.connect(pg_admin_url(), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return pg_database_url(name)


async def drop_pg_database(name: str) -> None:
    import asyncpg

    name = _checked(name)
    connection = await asyncpg.connect(pg_admin_url(), timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def pg_reachable(timeout: float = 3.0) -> bool:
    import asyncpg

    try:
        connection = await asyncpg.connect(pg_admin_url(), timeout=timeout)
    except Exception:
        return False
    await connection.close()
    return True
