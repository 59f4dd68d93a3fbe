"""The whole platform in one process: five real apps wired over httpx ASGI transports.

Each app keeps its own real database (SQLite files, or fresh PostgreSQL databases), runs its
migrations on start and its lifespan (relay included). Services reach each other and the
gateway through a routing transport keyed by the same URLs as in `make run`, so nothing but
the network is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from upstander.kit.clock import FrozenClock
from upstander.kit.testing import RoutingTransport

SERVICES = ("intake", "cases", "training", "notify")
APPS = ("gateway", *SERVICES)
PG_ADMIN_URL = os.environ.get(
    "UPSTANDER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEMO_PASSWORD = "upstander-demo"


def backend() -> str:
    return os.environ.get("UPSTANDER_TEST_BACKEND", "sqlite")


async def fresh_pg_database(name: str) -> str:
    """Drop and create `name` on the test server; return its SQLAlchemy asyncpg URL."""
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def database_url(name: str, directory: Path) -> str:
    if backend() == "postgresql":
        return await fresh_pg_database(f"upstander_test_{name}_{os.getpid()}")
    return f"sqlite+aiosqlite:///{directory / (name + '.db')}"


@dataclass
class Platform:
    apps: dict[str, FastAPI]
    transport: RoutingTransport
    clock: FrozenClock
    directory: Path
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def gateway(self) -> httpx.AsyncClient:
        return self.clients["gateway"]

    def client(self, name: str) -> httpx.AsyncClient:
        """A client that talks to one app directly (bypassing the gateway)."""
        return self.clients[name]

    async def token(self, email: str, password: str = DEMO_PASSWORD, org: str = "demo") -> str:
        key = (email, org)
        if key not in self._tokens:
            response = await self.gateway.post(
                "/auth/token",
                data={"grant_type": "password", "username": email, "password": password,
                      "org": org},
            )
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    async def auth(self, email: str, **kwargs: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token(email, **kwargs)}"}

    async def drain(self, rounds: int = 50) -> None:
        """Deliver every due event across all apps, until no outbox has work left."""
        for _ in range(rounds):
            moved = 0
            for app in self.apps.values():
                relay = getattr(app.state, "relay", None)
                if relay is not None:
                    moved += await relay.run_once()
            if moved == 0:
                return
        raise AssertionError("the outboxes did not drain")


def _settings_for(name: str, url: str, **overrides: Any) -> Any:
    module = importlib.import_module(f"upstander.{name}.settings")
    return module.Settings(database_url=url, log_json=True, **overrides)


def _create_app(name: str, settings: Any, transport: httpx.AsyncBaseTransport,
                clock: FrozenClock) -> FastAPI:
    module = importlib.import_module(f"upstander.{name}.app")
    return module.create_app(settings, transport=transport, clock=clock)


@contextlib.asynccontextmanager
async def running_platform(
    directory: Path, *, relay_background: bool = False, **overrides: Any
) -> AsyncIterator[Platform]:
    """Start all five apps. By default the relays do not run in the background: tests call
    `platform.drain()` so that what happens, and when, is decided by the test."""
    clock = FrozenClock()
    transport = RoutingTransport()
    apps: dict[str, FastAPI] = {}
    for name in APPS:
        url = await database_url(name, directory)
        settings = _settings_for(name, url, relay_background=relay_background, **overrides)
        app = _create_app(name, settings, transport, clock)
        apps[name] = app
        transport.add(settings.service_url(name), httpx.ASGITransport(
            app, raise_app_exceptions=False))
    async with contextlib.AsyncExitStack() as stack:
        # The gateway first: the services' first token checks fetch its JWKS.
        for name in APPS:
            await stack.enter_async_context(LifespanManager(apps[name], startup_timeout=60))
        platform = Platform(apps=apps, transport=transport, clock=clock, directory=directory)
        for name in APPS:
            base = apps[name].state.settings.service_url(name)
            client = httpx.AsyncClient(transport=transport, base_url=base, timeout=30)
            await stack.enter_async_context(client)
            platform.clients[name] = client
        await platform.drain()
        yield platform
        await asyncio.sleep(0)
