"""Each app's Alembic history: one head, builds an empty database that matches its models,
and (where it can) goes back to base and up again. Runs on the selected test backend."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import helpers
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from launcher import APPS, app_folder, migrations_dir, sqlite_url
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection


def _metadata_of(name: str) -> MetaData:
    try:
        models = importlib.import_module(f"upstander.{name}.models")
    except ModuleNotFoundError as error:
        # Skip only while the app itself is missing; a broken import inside it is a failure.
        if error.name in {"upstander", f"upstander.{name}", f"upstander.{name}.models"}:
            pytest.skip(f"upstander.{name}.models does not exist yet")
        raise
    return models.Model.metadata


def _migrations_of(name: str) -> Path:
    folder = migrations_dir(name)
    if not (folder / "env.py").exists():
        pytest.skip(f"{folder} has no env.py yet")
    if not list((folder / "versions").glob("*.py")):
        pytest.skip(f"{folder}/versions has no revision yet")
    return folder


@pytest.fixture
async def database_url(
    request: pytest.FixtureRequest, test_backend: str, tmp_path: Path
) -> AsyncIterator[str]:
    """An empty database on the selected backend (PostgreSQL: `upstander_t_<run>_migrations_
    <app>`, unique to this run)."""
    name: str = request.node.callspec.params["name"]
    url = await helpers.fresh_database(name, tmp_path, name=f"migrations_{name}", migrated=False)
    yield url
    await helpers.drop_database(url)


async def _alembic(database_url: str, folder: Path, action: str, revision: str) -> None:
    """Run `alembic <action> <revision>` on a connection, as upstander.kit.migrations does."""
    from upstander.kit.db import make_engine
    from upstander.kit.migrations import alembic_config

    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:

            def run(sync_connection: Connection) -> None:
                config = alembic_config(folder, database_url)
                config.attributes["connection"] = sync_connection
                getattr(command, action)(config, revision)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def _differences(database_url: str, metadata: MetaData) -> list[Any]:
    from upstander.kit.db import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:

            def compare(sync_connection: Connection) -> list[Any]:
                context = MigrationContext.configure(
                    sync_connection,
                    opts={
                        "compare_type": True,
                        "render_as_batch": sync_connection.dialect.name == "sqlite",
                    },
                )
                return list(compare_metadata(context, metadata))

            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def _tables(database_url: str) -> set[str]:
    from upstander.kit.db import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def _heads(folder: Path, database_url: str) -> list[str]:
    from upstander.kit.migrations import alembic_config

    return list(ScriptDirectory.from_config(alembic_config(folder, database_url)).get_heads())


def _downgradable(folder: Path, database_url: str) -> bool:
    """False when any revision's `downgrade()` refuses (raises NotImplementedError)."""
    from upstander.kit.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config(folder, database_url))
    for revision in script.walk_revisions():
        source = Path(revision.path).read_text(encoding="utf-8")
        if "NotImplementedError" in source.split("def downgrade", 1)[-1]:
            return False
    return True


@pytest.mark.parametrize("name", APPS)
def test_app_has_an_alembic_ini_beside_its_migrations(name: str) -> None:
    folder = _migrations_of(name)
    assert (app_folder(name) / "alembic.ini").exists(), f"no alembic.ini beside {folder}"


@pytest.mark.parametrize("name", APPS)
def test_migrations_have_exactly_one_head(name: str, tmp_path: Path) -> None:
    folder = _migrations_of(name)
    heads = _heads(folder, sqlite_url(tmp_path / "unused.db"))
    assert len(heads) == 1, f"{name} has {len(heads)} Alembic heads: {heads}; merge them"


@pytest.mark.parametrize("name", APPS)
async def test_upgrade_from_empty_matches_the_models(name: str, database_url: str) -> None:
    metadata = _metadata_of(name)
    folder = _migrations_of(name)

    await _alembic(database_url, folder, "upgrade", "head")

    differences = await _differences(database_url, metadata)
    assert differences == [], f"{name}: models and migrations differ: {differences}"


@pytest.mark.parametrize("name", APPS)
async def test_downgrade_to_base_and_upgrade_again(name: str, database_url: str) -> None:
    metadata = _metadata_of(name)
    folder = _migrations_of(name)
    if not _downgradable(folder, database_url):
        pytest.skip(f"{name}'s migrations do not support downgrade")
    await _alembic(database_url, folder, "upgrade", "head")

    await _alembic(database_url, folder, "downgrade", "base")
    assert await _tables(database_url) <= {"alembic_version"}
    await _alembic(database_url, folder, "upgrade", "head")

    assert await _differences(database_url, metadata) == []
