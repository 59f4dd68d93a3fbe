"""Fixtures and hooks every test folder shares; helpers live in tests/helpers.py.

The database backend comes from `UPSTANDER_TEST_BACKEND` (`sqlite`, the default, or
`postgresql`, against `UPSTANDER_TEST_PG_URL`); `scripts/test.sh` runs one pass per backend.
A fixture that makes a database depends on `test_backend`, which is how a test says it uses the
backend: the PostgreSQL pass runs only those tests (the others gain nothing from a second run),
the SQLite pass runs everything. See docs/testing.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import helpers
import pytest
from sqlalchemy.engine import make_url

T = TypeVar("T")

MARKERS = {
    "processes": "starts real service processes on localhost ports",
    "backend": "uses the selected database backend without a fixture that says so "
    "(runs in the PostgreSQL pass too)",
}


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine outside pytest-asyncio's loop (session start and end hooks)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def pytest_configure(config: pytest.Config) -> None:
    registered = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, description in MARKERS.items():
        if name not in registered:
            config.addinivalue_line("markers", f"{name}: {description}")


def pytest_report_header(config: pytest.Config) -> str:
    backend = helpers.selected_backend()
    if backend != "postgresql":
        return f"upstander test backend: {backend}"
    shown = make_url(helpers.pg_admin_url()).render_as_string(hide_password=True)
    return f"upstander test backend: {backend} ({shown}; databases upstander_t_{helpers.RUN_ID}_*)"


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    helpers.sweep_abandoned_template_folders()
    if helpers.selected_backend() != "postgresql":
        return
    if not _run(helpers.pg_reachable()):
        shown = make_url(helpers.pg_admin_url()).render_as_string(hide_password=True)
        raise pytest.UsageError(
            f"UPSTANDER_TEST_BACKEND=postgresql but no PostgreSQL answers at {shown} "
            "(set UPSTANDER_TEST_PG_URL)"
        )
    _run(helpers.sweep_abandoned_databases())


# What makes a database on the selected backend when a test calls it itself (rather than
# through a fixture that depends on `test_backend`).
DATABASE_MAKERS = {
    ("helpers", "fresh_database"),
    ("helpers", "fresh_pg_database"),
    ("harness", "database_url"),
    ("harness", "running_platform"),
}


def _module_makes_databases(module: Any) -> bool:
    for value in vars(module).values():
        if getattr(value, "__name__", None) in {"helpers", "harness"} and not callable(value):
            return True  # `import helpers` / `import harness`: may call any of them
        if (getattr(value, "__module__", None), getattr(value, "__name__", None)) in (
            DATABASE_MAKERS
        ):
            return True
    return False


def _uses_backend(item: pytest.Item) -> bool:
    """Whether a test touches the selected backend: through a fixture that depends on
    `test_backend`, a `backend` marker, or a module that makes databases itself."""
    if "test_backend" in getattr(item, "fixturenames", ()) or item.get_closest_marker("backend"):
        return True
    module = getattr(item, "module", None)
    return module is not None and _module_makes_databases(module)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass keep only the tests that use the backend. When a selection has
    none (say `tests/kit` alone), it runs as selected rather than as nothing."""
    if helpers.selected_backend() != "postgresql":
        return
    kept = [item for item in items if _uses_backend(item)]
    if kept and len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if not _uses_backend(item)])
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    helpers.remove_template_folder()
    if helpers.selected_backend() == "postgresql":
        helpers.finish_run()


@pytest.fixture(scope="session")
def test_backend() -> str:
    """`sqlite` or `postgresql`, from UPSTANDER_TEST_BACKEND. Every fixture that makes a
    database depends on it (that is what puts its tests in the PostgreSQL pass)."""
    return helpers.selected_backend()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL admin URL (plain `postgresql://`, for asyncpg or psql)."""
    return helpers.pg_admin_url()


@pytest.fixture(scope="session")
def minter() -> helpers.TokenMinter:
    """Signs tokens as the gateway does and serves its JWKS (`minter.transport()`)."""
    return helpers.TokenMinter()
