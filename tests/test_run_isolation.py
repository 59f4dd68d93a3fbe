"""Two `make test` runs on one machine never drop each other's PostgreSQL databases: every
database a run makes carries its pytest process's id, and a run sweeps only the databases of
runs whose process is gone (docs/testing.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helpers
import pytest


async def _databases() -> set[str]:
    connection = await helpers._admin()
    try:
        rows = await connection.fetch("SELECT datname FROM pg_database")
    finally:
        await connection.close()
    return {row["datname"] for row in rows}


async def _create(name: str) -> None:
    connection = await helpers._admin()
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def test_a_run_sweeps_only_the_databases_of_runs_that_are_gone(test_backend: str) -> None:
    if test_backend != "postgresql":
        pytest.skip("about PostgreSQL databases: runs in the PostgreSQL pass")
    assert helpers.RUN_ID.startswith(f"{os.getpid()}_") or os.environ.get(helpers.RUN_ID_VARIABLE)
    # Another run still going (a live process), and one killed before it cleaned up (a pid
    # past the kernel's largest: no process has it).
    other_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    alive = f"{helpers.DATABASE_PREFIX}{other_run.pid}_abcdef_isolation"
    abandoned = f"{helpers.DATABASE_PREFIX}{gone_pid}_abcdef_isolation"
    try:
        await _create(alive)
        await _create(abandoned)
        swept = await helpers.sweep_abandoned_databases()
        present = await _databases()
        assert alive in present, "another live run's database was dropped"
        assert abandoned not in present and abandoned in swept
    finally:
        other_run.kill()
        other_run.wait()
        await helpers.drop_pg_database(alive)
        await helpers.drop_pg_database(abandoned)
