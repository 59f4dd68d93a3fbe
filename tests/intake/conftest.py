"""Fixtures of the intake tests: the app on a fresh database of the selected backend, and a
stand-in gateway that publishes a test signing key, so tests mint their own tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import helpers
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from upstander.intake.app import create_app
from upstander.intake.settings import Settings
from upstander.kit.clock import FrozenClock

SERVICE = "intake"
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


@pytest.fixture(scope="session")
def mint(minter: helpers.TokenMinter) -> Mint:
    """Mint a token as the gateway would: `mint(org=uuid, roles=["admin"])`. Valid for decades
    either side of now, since tests move the app's frozen clock freely; `ttl` < 0 expires it."""
    return minter.mint


@pytest.fixture(scope="session")
def mint_reporter(mint: Mint) -> Callable[[uuid.UUID, uuid.UUID], str]:
    """A reporter token as `POST /auth/receipt` gives one: scoped to one report of one org."""

    def mint_reporter_token(report_id: uuid.UUID, org_id: uuid.UUID) -> str:
        return mint(
            org=org_id,
            roles=[],
            sub=f"reporter:{report_id}",
            typ="reporter",
            report=report_id,
            scope="reporter",
        )

    return mint_reporter_token


@pytest.fixture(scope="session")
def mint_service(mint: Mint) -> Callable[[str], str]:
    """A service token, as the gateway's client-credentials grant gives `svc-<name>`."""

    def mint_service_token(name: str = "gateway") -> str:
        return mint(org=None, roles=[], sub=f"svc-{name}", typ="service", scope="internal")

    return mint_service_token


@pytest.fixture
async def database_url(test_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database on the selected backend, already migrated (a copy of the run's
    template): a SQLite file in `tmp_path`, or `upstander_t_<run>_intake_<n>`."""
    url = await helpers.fresh_database(SERVICE, tmp_path)
    yield url
    await helpers.drop_database(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def intake_app_object(gateway_transport: httpx.MockTransport) -> helpers.ReusedApp:
    """The module's app object, built once; `app` starts it for each test on that test's own
    database and clock (see `helpers.ReusedApp`)."""
    # The relay stays off: tests look at the outbox as the request left it.
    # No migration on start: `database_url` is a copy of the run's migrated template (a no-op
    # upgrade per test costs more than the copy; tests/test_migrations.py tests the history).
    settings = Settings(
        database_url="sqlite+aiosqlite://",  # each test's own, set by `app`
        log_json=False,
        log_level="WARNING",
        relay_background=False,
        migrate_on_start=False,
    )
    return helpers.ReusedApp(create_app(settings, transport=gateway_transport, clock=FrozenClock()))


@pytest.fixture
async def app(
    intake_app_object: helpers.ReusedApp, database_url: str, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running, on a fresh database already at head and the test's
    `clock`: everything it starts is the test's own, as with a new app."""
    async with intake_app_object.running(database_url=database_url, clock=clock) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
