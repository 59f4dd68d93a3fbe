"""Apply a service's Alembic migrations from code (on start in dev mode, `make migrate`, tests).

A database already at head is the common case on start (`make run` a second time, a test
platform restarted): then Alembic is not run at all. Loading its script directory imports
every migration file and costs far more than the one `SELECT` that says nothing is to do
(docs/performance.md). The heads are read from the files' `revision` / `down_revision` lines;
whenever that reading is not certain, Alembic decides as before.

A running app that must migrate (`migrate_in_child`) runs Alembic in a child process of its
own (`python -m upstander.kit.migrations`), so Alembic, Mako and the migration files never
load into the server: they would stay in its memory for its whole life (about 14 MB per app,
docs/performance.md) for work done once. The child gets the database URL through its
environment, never its command line (visible to every user in `ps`)."""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from upstander.kit.db import is_in_memory, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("upstander.kit.migrations")

VERSION_TABLE = "alembic_version"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def script_heads(migrations_dir: Path) -> frozenset[str] | None:
    """The head revisions of `migrations_dir/versions`, read from the files' text; None when a
    file does not say plainly (a literal) what its revision and its parents are."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((migrations_dir / "versions").glob("*.py")):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found:
            return None
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
        except (ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or revision in revisions:
            return None
        if down is None:
            down = ()
        elif isinstance(down, str):
            down = (down,)
        if not isinstance(down, tuple | list) or not all(isinstance(d, str) for d in down):
            return None
        revisions.add(revision)
        parents.update(down)
    if not revisions or not parents <= revisions:
        return None
    return frozenset(revisions - parents)


def database_revisions(connection: Connection) -> frozenset[str] | None:
    """What `alembic_version` holds; None when there is no such table yet."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(str(row[0]) for row in rows)


URL_VARIABLE = "UPSTANDER_MIGRATE_DATABASE_URL"
DIR_VARIABLE = "UPSTANDER_MIGRATE_DIR"


class MigrationFailed(RuntimeError):
    """The child process that ran the migrations failed (its log says why)."""


async def upgrade_to_head(
    database_url: str, migrations_dir: Path, *, migrate_in_child: bool = False
) -> None:
    """Upgrade on an async connection: env.py uses `config.attributes['connection']`. With
    `migrate_in_child`, Alembic runs in a child process when there is anything to do (never for
    an in-memory SQLite database, which a child could not see)."""
    began = time.perf_counter()
    heads = script_heads(migrations_dir)
    engine = make_engine(database_url)
    child = migrate_in_child and not is_in_memory(database_url)
    try:
        async with engine.begin() as connection:

            def _upgrade(sync_connection: Connection) -> bool | None:
                if heads is not None and database_revisions(sync_connection) == heads:
                    return False
                if child:
                    return None  # to do, in the child
                from alembic import command

                config = alembic_config(migrations_dir, database_url)
                config.attributes["connection"] = sync_connection
                command.upgrade(config, "head")
                return True

            outcome = await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()
    if outcome is None:
        await _upgrade_in_child(database_url, migrations_dir)
    ran = outcome is not False
    log.info(
        "migrations %s in %.0f ms",
        ("applied in a child process" if outcome is None else "applied")
        if ran
        else "already at head",
        (time.perf_counter() - began) * 1000,
    )


async def _upgrade_in_child(database_url: str, migrations_dir: Path) -> None:
    environment = {**os.environ, URL_VARIABLE: database_url, DIR_VARIABLE: str(migrations_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "upstander.kit.migrations", env=environment
    )
    if await process.wait() != 0:
        raise MigrationFailed(
            f"the migrations of {migrations_dir.parent.name} failed in a child process "
            f"(exit status {process.returncode}; its log is above)"
        )


def main() -> int:
    """The child: upgrade the database of `UPSTANDER_MIGRATE_DATABASE_URL` with the scripts of
    `UPSTANDER_MIGRATE_DIR`, logging as the parent's app does."""
    from upstander.kit.observability import configure_child_logging

    folder = Path(os.environ[DIR_VARIABLE])
    configure_child_logging(folder.parent.name)
    asyncio.run(upgrade_to_head(os.environ[URL_VARIABLE], folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
