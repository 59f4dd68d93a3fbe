"""Helpers of the anonymous-timing tests: every datetime stored in a database (found by
inspecting its tables, not by knowing them), precise times in the raw SQLite files, and log
lines as the kit's JSON formatter writes them."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, Table, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from upstander.kit.observability import JsonFormatter

StoredTime = tuple[str, str, str]  # (table, row key, column)

# A date-time as SQLite stores it (SQLAlchemy writes "YYYY-MM-DD HH:MM:SS.ffffff") or as
# ISO 8601 inside JSON and logs; the caller's day keeps other rows out of the scan.
_TIMESTAMP = r"{day}[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{{1,6}}))?)?"


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _datetime_tables(connection: Any) -> list[tuple[Table, list[str], list[str]]]:
    inspector = inspect(connection)
    found = []
    for name in inspector.get_table_names():
        table = Table(name, MetaData(), autoload_with=connection)
        columns = [c.name for c in table.columns if isinstance(c.type, DateTime)]
        if columns:
            keys = [c.name for c in table.primary_key.columns] or [next(iter(table.columns)).name]
            found.append((table, keys, columns))
    return found


async def stored_times(engine: AsyncEngine) -> dict[StoredTime, datetime]:
    """Every non-null datetime of every table: {(table, row key, column): value}."""
    values: dict[StoredTime, datetime] = {}
    async with engine.connect() as connection:
        tables = await connection.run_sync(_datetime_tables)
        for table, keys, columns in tables:
            rows = await connection.execute(
                select(*(table.c[k] for k in keys), *(table.c[c] for c in columns))
            )
            for row in rows:
                row_key = "/".join(str(part) for part in row[: len(keys)])
                for column, value in zip(columns, row[len(keys) :], strict=True):
                    if isinstance(value, datetime):
                        values[(table.name, row_key, column)] = _aware(value)
    return values


def new_times(
    before: dict[StoredTime, datetime], after: dict[StoredTime, datetime]
) -> dict[StoredTime, datetime]:
    """The times written (added or changed) between two snapshots."""
    return {key: value for key, value in after.items() if before.get(key) != value}


def finer_than_the_hour(times: dict[StoredTime, datetime]) -> dict[StoredTime, datetime]:
    return {
        key: value
        for key, value in times.items()
        if (value.minute, value.second, value.microsecond) != (0, 0, 0)
    }


async def sqlite_file_bytes(engine: AsyncEngine) -> bytes:
    """The database file and its WAL, after a checkpoint (so recent writes are in the file)."""
    async with engine.connect() as connection:
        await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    database = engine.url.database
    assert database, "not a SQLite file database"
    path = Path(database)
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def precise_timestamps(raw: bytes | str, day: str) -> list[str]:
    """Timestamps of `day` in `raw` that carry minutes, seconds or a fraction."""
    text_ = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    found = []
    for match in re.finditer(_TIMESTAMP.format(day=re.escape(day)), text_):
        minute, second, fraction = match.group(2), match.group(3) or "00", match.group(4) or "0"
        if minute != "00" or second != "00" or fraction.strip("0"):
            found.append(match.group(0))
    return found


@contextlib.contextmanager
def json_log_lines() -> Iterator[list[str]]:
    """Collect what the root logger writes at INFO and above, formatted by the kit's
    `JsonFormatter` (the formatter every service uses with `log_json`)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    lines: list[str] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        lines.extend(line for line in stream.getvalue().splitlines() if line.strip())


def log_time(line: str) -> datetime:
    return datetime.fromisoformat(json.loads(line)["time"])
