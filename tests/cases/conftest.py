"""Fixtures of the cases tests: the app on a fresh database of the selected backend, and a
stand-in gateway that publishes a test signing key, so tests mint their own tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import helpers
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from upstander.cases.app import create_app
from upstander.cases.settings import Settings
from upstander.kit.clock import FrozenClock

SERVICE = "cases"
JWKS_URL = helpers.JWKS_URL

Mint = Callable[..., str]


@pytest.fixture(scope="session")
def signing_key(minter: helpers.TokenMinter) -> tuple[Ed25519PrivateKey, str]:
    """The stand-in gateway's private key and its `kid`."""
    return minter.key, minter.kid


@pytest.fixture(scope="session")
def gateway_transport(minter: helpers.TokenMinter) -> httpx.MockTransport:
    """Stands in for the gateway (another team's service): only its JWKS is needed here."""
    return minter.transport()


@pytest.fixture
def mint(minter: helpers.TokenMinter, clock: FrozenClock) -> Mint:
    """Mint a token as the gateway would: `mint(org=uuid, roles=["admin"])`; a reporter's
    with `typ="reporter", report=report_id`. Issued at the test clock's now, since services
    check a token's time window against the app's clock."""

    def mint_token(
        *,
        org: uuid.UUID | None,
        roles: list[str],
        sub: uuid.UUID | str | None = None,
        typ: str = "staff",
        ttl: int = 300,
        report: uuid.UUID | None = None,
        **claims: Any,
    ) -> str:
        return minter.mint(
            org=org,
            roles=roles,
            sub=sub,
            typ=typ,
            ttl=ttl,
            report=report,
            issued_at=clock.now(),
            **claims,
        )

    return mint_token


@pytest.fixture
def service_token(mint: Mint) -> str:
    """What intake's relay presents: a service token from the client-credentials grant
    (valid for a year of test-clock time, so tests may move the clock on)."""
    return mint(org=None, roles=[], sub="svc-intake", typ="service", ttl=365 * 86400)


@pytest.fixture
async def database_url(test_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database on the selected backend, already migrated (a copy of the run's
    template): a SQLite file in `tmp_path`, or `upstander_t_<run>_cases_<n>`."""
    url = await helpers.fresh_database(SERVICE, tmp_path)
    yield url
    await helpers.drop_database(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def cases_app_object(gateway_transport: httpx.MockTransport) -> helpers.ReusedApp:
    """The module's app object, built once; `app` starts it for each test on that test's own
    database and clock (see `helpers.ReusedApp`)."""
    # No background relay: tests read the outbox as written (and drain it themselves).
    # No background deadline loop either: tests call `app.state.deadlines.run_once()`.
    # No migration on start: `database_url` is a copy of the run's migrated template (a no-op
    # upgrade per test costs more than the copy; tests/test_migrations.py tests the history).
    settings = Settings(
        database_url="sqlite+aiosqlite://",  # each test's own, set by `app`
        log_json=False,
        log_level="WARNING",
        relay_background=False,
        deadline_scheduler_background=False,
        migrate_on_start=False,
    )
    return helpers.ReusedApp(create_app(settings, transport=gateway_transport, clock=FrozenClock()))


@pytest.fixture
async def app(
    cases_app_object: helpers.ReusedApp, database_url: str, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, on a fresh database already at head and the test's
    `clock`: everything it starts is the test's own, as with a new app."""
    async with cases_app_object.running(database_url=database_url, clock=clock) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
