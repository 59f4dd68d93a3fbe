"""Fixtures of the cases tests: the app on SQLite and PostgreSQL, and a stand-in gateway that
publishes a test signing key, so tests mint their own tokens."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm

from upstander.cases.app import create_app
from upstander.cases.settings import Settings
from upstander.kit.clock import FrozenClock

SERVICE = "cases"
JWKS_URL = "http://127.0.0.1:8000/.well-known/jwks.json"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_DATABASE = f"upstander_test_{SERVICE}"

Mint = Callable[..., str]


@pytest.fixture(scope="session")
def signing_key() -> tuple[Ed25519PrivateKey, str]:
    return Ed25519PrivateKey.generate(), f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def gateway_transport(signing_key: tuple[Ed25519PrivateKey, str]) -> httpx.MockTransport:
    """Stands in for the gateway (another team's service): only its JWKS is needed here."""
    key, kid = signing_key
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="EdDSA")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and str(request.url) == JWKS_URL:
            return httpx.Response(200, json={"keys": [jwk]})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


@pytest.fixture
def mint(signing_key: tuple[Ed25519PrivateKey, str], clock: FrozenClock) -> Mint:
    """Mint a token as the gateway would: `mint(org=uuid, roles=["admin"])`; a reporter's
    with `typ="reporter", report=report_id`. Issued at the test clock's now, since services
    check a token's time window against the app's clock."""
    key, kid = signing_key

    def mint_token(
        *,
        org: uuid.UUID | None,
        roles: list[str],
        sub: uuid.UUID | str | None = None,
        typ: str = "staff",
        ttl: int = 300,
        report: uuid.UUID | None = None,
    ) -> str:
        now = int(clock.now().timestamp())
        claims = {
            "iss": "upstander",
            "aud": "upstander",
            "sub": str(sub or uuid.uuid4()),
            "org": str(org) if org else None,
            "roles": roles,
            "scope": "",
            "typ": typ,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if report is not None:
            claims["report"] = str(report)
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})

    return mint_token


@pytest.fixture
def service_token(mint: Mint) -> str:
    """What intake's relay presents: a service token from the client-credentials grant
    (valid for a year of test-clock time, so tests may move the clock on)."""
    return mint(org=None, roles=[], sub="svc-intake", typ="service", ttl=365 * 86400)


async def _fresh_postgres_database() -> str:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable: {type(exc).__name__}")
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {POSTGRES_DATABASE}")
    finally:
        await connection.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{POSTGRES_DATABASE}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/{SERVICE}.db"
    return await _fresh_postgres_database()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 24, 9, 30, tzinfo=UTC))


@pytest.fixture
async def app(
    database_url: str, gateway_transport: httpx.MockTransport, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (which migrates the fresh database in dev mode)."""
    # No background relay: tests read the outbox as written (and drain it themselves).
    # No background deadline loop either: tests call `app.state.deadlines.run_once()`.
    settings = Settings(
        database_url=database_url,
        log_json=False,
        log_level="WARNING",
        relay_background=False,
        deadline_scheduler_background=False,
    )
    application = create_app(settings, transport=gateway_transport, clock=clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
