"""Fixtures every test folder may use. Keep this small: per-service fixtures live beside
their tests (tests/<service>/conftest.py); shared helpers live in tests/helpers.py.

The database backend comes from `UPSTANDER_TEST_BACKEND` (`sqlite`, the default, or
`postgresql`, against `UPSTANDER_TEST_PG_URL`); `scripts/test.sh` runs the suite on both.
"""

from __future__ import annotations

import helpers
import pytest
from sqlalchemy.engine import make_url


def pytest_configure(config: pytest.Config) -> None:
    registered = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    if "processes" not in registered:
        config.addinivalue_line(
            "markers", "processes: starts real service processes on localhost ports"
        )


def pytest_report_header(config: pytest.Config) -> str:
    backend = helpers.selected_backend()
    shown = make_url(helpers.pg_admin_url()).render_as_string(hide_password=True)
    where = f" ({shown})" if backend == "postgresql" else ""
    return f"upstander test backend: {backend}{where}"


@pytest.fixture(scope="session")
def test_backend() -> str:
    """`sqlite` or `postgresql`, from UPSTANDER_TEST_BACKEND."""
    return helpers.selected_backend()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL admin URL (plain `postgresql://`, for asyncpg or psql)."""
    return helpers.pg_admin_url()
