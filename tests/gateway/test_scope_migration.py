"""Gateway migration 0006: an organisation's API clients pass by scope from now on, so each
keeps the catalogue scopes it had plus those its roles amount to; a made-up scope is dropped;
platform service clients are left alone (SQLite: the migration's data step is dialect-free)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from upstander.gateway.app import MIGRATIONS_DIR
from upstander.kit.db import make_engine
from upstander.kit.migrations import alembic_config
from upstander.kit.scopes import ROLE_SCOPES


async def _upgrade(url: str, revision: str) -> None:
    from alembic import command

    engine = make_engine(url)
    try:
        async with engine.begin() as connection:

            def run(sync_connection: Connection) -> None:
                config = alembic_config(MIGRATIONS_DIR, url)
                config.attributes["connection"] = sync_connection
                command.upgrade(config, revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def _client(url: str, kind: str, scopes: list[str], roles: list[str]) -> str:
    row_id = uuid.uuid4()
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            now = datetime.now(UTC)
            await connection.execute(
                text(
                    "INSERT INTO api_clients (id, org_id, client_id, secret_hash, name, scopes,"
                    " roles, kind, active, created_at, updated_at, access_version)"
                    " VALUES (:id, NULL, :client_id, 'x', 'n', :scopes, :roles, :kind, 1,"
                    " :now, :now, 0)"
                ),
                {
                    "id": row_id.hex,
                    "client_id": "cl_" + row_id.hex[:10],
                    "scopes": json.dumps(scopes),
                    "roles": json.dumps(roles),
                    "kind": kind,
                    "now": now,
                },
            )
    finally:
        await engine.dispose()
    return row_id.hex


async def _scopes(url: str, row_id: str) -> list[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(
                text("SELECT scopes FROM api_clients WHERE id = :id"), {"id": row_id}
            )
    finally:
        await engine.dispose()
    return list(json.loads(value))


async def test_clients_roles_become_scopes_and_made_up_scopes_go(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    await _upgrade(url, "0005")
    hr = await _client(url, "client", ["identity:write", "cases:read"], ["hr_integration"])
    lms = await _client(url, "client", [], ["trainer"])
    scoped = await _client(url, "client", ["stats:read"], [])
    service = await _client(url, "service", ["events:publish"], [])

    await _upgrade(url, "0006")

    assert await _scopes(url, hr) == ["cases:read", "people:read"]
    assert set(await _scopes(url, lms)) == set(ROLE_SCOPES["trainer"])
    assert await _scopes(url, scoped) == ["stats:read"]
    assert await _scopes(url, service) == ["events:publish"]
