"""The whole platform in one process: five real apps wired over httpx ASGI transports.

Each app keeps its own real database (SQLite files, or PostgreSQL databases unique to the run,
see tests/helpers.py), copied from the run's migrated template, and runs its lifespan (relay
included; its migration on start finds the database at head). Services reach each other and the
gateway through a routing transport keyed by the same URLs as in `make run`, so nothing but
the network is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import helpers
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import update

from upstander.kit.clock import FrozenClock
from upstander.kit.testing import RoutingTransport

SERVICES = ("intake", "cases", "training", "notify")
APPS = ("gateway", *SERVICES)
DEMO_PASSWORD = "upstander-demo"


async def database_url(name: str, directory: Path) -> str:
    """A fresh database for one app on the selected backend: a copy of the run's migrated
    template (`directory/<name>.db`, or `upstander_t_<run>_<name>_<n>`, dropped at the end)."""
    return await helpers.fresh_database(name, directory)


def load_example(name: str) -> ModuleType:
    """`examples/<name>.py`, imported as a module of its own (the examples are no package)."""
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
                data={
                    "grant_type": "password",
                    "username": email,
                    "password": password,
                    "org": org,
                },
            )
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    async def auth(self, email: str, **kwargs: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token(email, **kwargs)}"}

    async def client_headers(self, scopes: list[str], name: str = "") -> dict[str, str]:
        """The Authorization header of an API client the demo admin registers with `scopes`,
        signed in with the client-credentials grant."""
        created = await self.gateway.post(
            "/identity/v1/clients",
            json={"name": name or f"client {uuid.uuid4().hex[:6]}", "scopes": scopes},
            headers=await self.auth("admin@demo.example"),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        token = await self.gateway.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(body["client_id"], body["client_secret"]),
        )
        assert token.status_code == 200, token.text
        return {"authorization": f"Bearer {token.json()['access_token']}"}

    async def api_client(self, scopes: list[str], name: str = "") -> httpx.AsyncClient:
        """An httpx client to the gateway carrying the token of a new API client with
        `scopes` (`client_headers`); the caller closes it."""
        return httpx.AsyncClient(
            transport=self.transport,
            base_url=str(self.gateway.base_url),
            headers=await self.client_headers(scopes, name),
            timeout=30,
        )

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

    async def settle(self, retries: int = 5) -> None:
        """`drain`, and hand again at once what a failed delivery left waiting for its retry
        (the clock is frozen, so a backoff never ends by itself): the platform's start-up
        events (org and people) must all arrive before a module's first test, even when a
        loaded machine made a first delivery time out. Only for start-up; tests that look at
        retries use `drain`, which leaves waiting rows alone."""
        await self.drain()
        for _ in range(retries):
            waiting = 0
            for app in self.apps.values():
                relay = getattr(app.state, "relay", None)
                if relay is None:
                    continue
                outbox = relay.bus.outbox
                async with app.state.sessionmaker() as session, session.begin():
                    result = await session.execute(
                        update(outbox)
                        .where(outbox.status == "pending")
                        .values(next_attempt_at=self.clock.now(), locked_until=None)
                    )
                    waiting += result.rowcount or 0
            if waiting == 0:
                return
            await self.drain()
        raise AssertionError("start-up events still undelivered after retries")


def _settings_for(name: str, url: str, **overrides: Any) -> Any:
    module = importlib.import_module(f"upstander.{name}.settings")
    return module.Settings(database_url=url, log_json=True, **overrides)


def _create_app(
    name: str, settings: Any, transport: httpx.AsyncBaseTransport, clock: FrozenClock
) -> FastAPI:
    module = importlib.import_module(f"upstander.{name}.app")
    return module.create_app(settings, transport=transport, clock=clock)


def _vault_slots() -> dict[Any, Any]:
    """The vault each service's slot holds now (None where none is attached)."""
    held: dict[Any, Any] = {}
    for name in APPS:
        try:
            module = importlib.import_module(f"upstander.{name}.models")
        except ImportError:
            continue
        slot = getattr(getattr(module, "Model", None), "__vault_slot__", None)
        if slot is not None:
            held[slot] = slot._vault
    return held


def _restore_vault_slots(held: dict[Any, Any]) -> None:
    for slot, vault in held.items():
        slot.vault = vault


@contextlib.asynccontextmanager
async def running_platform(
    directory: Path, *, relay_background: bool = False, **overrides: Any
) -> AsyncIterator[Platform]:
    """Start all five apps. By default the relays do not run in the background: tests call
    `platform.drain()` so that what happens, and when, is decided by the test."""
    clock = FrozenClock()
    transport = RoutingTransport()
    apps: dict[str, FastAPI] = {}
    urls: list[str] = []
    for name in APPS:
        url = await database_url(name, directory)
        urls.append(url)
        extra = dict(overrides)
        if name == "notify":
            extra.setdefault("mail_dir", str(directory / "mail"))
        if name == "gateway":
            # Tests sign in far more often than people do; the limits have their own tests.
            extra.setdefault("auth_rate_limit_per_minute", 100_000)
            extra.setdefault("auth_account_rate_limit_per_minute", 100_000)
        settings = _settings_for(name, url, relay_background=relay_background, **extra)
        app = _create_app(name, settings, transport, clock)
        apps[name] = app
        transport.add(
            settings.service_url(name), httpx.ASGITransport(app, raise_app_exceptions=False)
        )
    async with contextlib.AsyncExitStack() as stack:
        for url in urls:  # last, once every app has stopped
            stack.push_async_callback(helpers.drop_database, url)
        # Each service's column types find its vault in one slot per process: a platform
        # started while another runs (a module's own next to the session's) takes the slots
        # over, so give them back when it stops.
        stack.callback(_restore_vault_slots, _vault_slots())
        # The gateway first: the services' first token checks fetch its JWKS.
        for name in APPS:
            await stack.enter_async_context(LifespanManager(apps[name], startup_timeout=60))
        platform = Platform(apps=apps, transport=transport, clock=clock, directory=directory)
        for name in APPS:
            base = apps[name].state.settings.service_url(name)
            client = httpx.AsyncClient(transport=transport, base_url=base, timeout=30)
            await stack.enter_async_context(client)
            platform.clients[name] = client
        await platform.settle()
        yield platform
        await asyncio.sleep(0)
