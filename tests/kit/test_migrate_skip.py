"""`upgrade_to_head` skips Alembic when the database is already at head: the heads it reads
from the migration files are Alembic's own, a database one revision behind is still upgraded,
and a file it cannot read plainly makes it leave the decision to Alembic. Runs on the
selected test backend."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import helpers
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from launcher import APPS, migrations_dir
from sqlalchemy import text
from sqlalchemy.engine import Connection

from upstander.kit.db import make_engine
from upstander.kit.migrations import (
    MigrationFailed,
    alembic_config,
    script_heads,
    upgrade_to_head,
)


@pytest.mark.parametrize("name", APPS)
def test_heads_read_from_the_files_are_alembics(name: str) -> None:
    folder = migrations_dir(name)
    alembic_heads = ScriptDirectory.from_config(alembic_config(folder, "sqlite://")).get_heads()
    assert script_heads(folder) == frozenset(alembic_heads)


def test_a_file_that_is_not_plain_leaves_the_decision_to_alembic(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir("training"), folder)
    newest = sorted((folder / "versions").glob("*.py"))[-1]
    source = newest.read_text()
    newest.write_text(source.replace('revision: str = "', 'revision: str = REV_PREFIX + "', 1))
    assert script_heads(folder) is None


@pytest.fixture
async def training_db(tmp_path: Path) -> AsyncIterator[str]:
    url = await helpers.fresh_database("training", tmp_path, name="migrate_skip", migrated=False)
    yield url
    await helpers.drop_database(url)


async def _version(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return {str(row[0]) for row in rows}
    finally:
        await engine.dispose()


async def test_at_head_is_skipped_and_behind_is_upgraded(
    training_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = migrations_dir("training")
    heads = script_heads(folder)
    assert heads is not None
    caplog.set_level("INFO", logger="upstander.kit.migrations")

    await upgrade_to_head(training_db, folder)  # empty: Alembic builds it
    assert await _version(training_db) == set(heads)
    assert "migrations applied" in caplog.text

    caplog.clear()
    await upgrade_to_head(training_db, folder)  # at head: nothing runs
    assert "already at head" in caplog.text

    # One revision back (its downgrade run by Alembic): the next start upgrades again.
    engine = make_engine(training_db)
    try:
        async with engine.begin() as connection:

            def _down(sync_connection: Connection) -> None:
                config = alembic_config(folder, training_db)
                config.attributes["connection"] = sync_connection
                command.downgrade(config, "-1")

            await connection.run_sync(_down)
    finally:
        await engine.dispose()
    assert await _version(training_db) != set(heads)
    caplog.clear()
    await upgrade_to_head(training_db, folder)
    assert "migrations applied" in caplog.text
    assert await _version(training_db) == set(heads)


async def test_an_app_migrates_in_a_child_process(
    training_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = migrations_dir("training")
    caplog.set_level("INFO", logger="upstander.kit.migrations")
    await upgrade_to_head(training_db, folder, migrate_in_child=True)
    assert await _version(training_db) == set(script_heads(folder) or ())
    assert "migrations applied in a child process" in caplog.text
    caplog.clear()
    await upgrade_to_head(training_db, folder, migrate_in_child=True)  # at head: no child
    assert "already at head" in caplog.text


async def test_a_failing_child_fails_the_start(training_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir("training"), folder)
    newest = sorted((folder / "versions").glob("*.py"))[-1]
    newest.write_text(newest.read_text() + "\nraise RuntimeError('a broken migration')\n")
    with pytest.raises(MigrationFailed, match="child process"):
        await upgrade_to_head(training_db, folder, migrate_in_child=True)


def test_the_app_process_never_loads_alembic(tmp_path: Path) -> None:
    """What an app's start runs, in a process of its own: Alembic stays in the child."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from upstander.kit.migrations import upgrade_to_head
        url = "sqlite+aiosqlite:///{tmp_path / "child.db"}"
        asyncio.run(upgrade_to_head(url, Path({str(migrations_dir("training"))!r}),
                                    migrate_in_child=True))
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("alembic", "mako")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
    assert '"message": "migrations applied in ' in done.stderr  # the child's own line
