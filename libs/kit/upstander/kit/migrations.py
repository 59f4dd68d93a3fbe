"""Apply a service's Alembic migrations from code (on start in dev mode, `make migrate`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from upstander.kit.db import make_engine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def upgrade_to_head(database_url: str, migrations_dir: Path) -> None:
    """Upgrade on an async connection: env.py uses `config.attributes['connection']`."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:

            def _upgrade(sync_connection: Connection) -> None:
                config = alembic_config(migrations_dir, database_url)
                config.attributes["connection"] = sync_connection
                command.upgrade(config, "head")

            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()
