"""The body of every service's `migrations/env.py`: online migrations on a given connection,
batch mode for SQLite, and a naming convention from the service's metadata."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from upstander.kit.db import make_engine


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render the kit's column types as their plain storage types, so migration files never
    import application code (a migration must not change when the code does)."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl if isinstance(obj.impl, TypeEngine) else obj.impl()
        if isinstance(impl, DateTime):
            return "sa.DateTime(timezone=True)"
        return f"sa.{impl!r}"
    return False


def _configure(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run(metadata: MetaData) -> None:
    config = context.config
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        _configure(connection, metadata)
        return
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    async def _online() -> None:
        engine = make_engine(str(config.get_main_option("sqlalchemy.url")))
        async with engine.connect() as async_connection:
            await async_connection.run_sync(_configure, metadata)
            await async_connection.commit()
        await engine.dispose()

    asyncio.run(_online())
