"""Fixtures for the notify service: the app on the selected backend, callers with tokens.

The gateway (another team's service) is stood in for by the suite's `minter`
(tests/helpers.py), whose JWKS transport serves its key, so tokens minted here verify exactly
as the gateway's would."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import helpers
import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from notify_support import free_port, running_app

from upstander.notify.mail.sender import Mailer

SERVICE = "notify"
JWKS_URL = helpers.JWKS_URL

# Re-exported: `running_app` and `free_port` live in notify_support.py, a plain module the
# tests import by name (`from conftest import ...` finds whichever conftest pytest loaded last
# when several test folders run together).
__all__ = ["free_port", "running_app"]

# The suite's one token minter (tests/helpers.py); the `minter` fixture is tests/conftest.py's.
TokenMinter = helpers.TokenMinter


@dataclass
class Caller:
    """A person of an org; `headers` carry their bearer token."""

    org_id: uuid.UUID
    person_id: uuid.UUID
    headers: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory, minter: TokenMinter
) -> AsyncIterator[Any]:
    """The service on the selected backend, once per module. Tests stay independent by using
    a fresh org each (every query is org-scoped)."""
    async with running_app(test_backend, tmp_path_factory, minter) as application:
        yield application


@pytest_asyncio.fixture(loop_scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def caller(minter: TokenMinter) -> Callable[..., Caller]:
    """`caller(*roles, org=None)`: a person of `org` (a fresh org by default) with `roles`."""

    def make(*roles: str, org: uuid.UUID | None = None, **claims: Any) -> Caller:
        org_id = org or uuid.uuid4()
        person_id = uuid.uuid4()
        token = minter.mint(org=org_id, roles=list(roles), sub=person_id, **claims)
        return Caller(org_id, person_id, {"Authorization": f"Bearer {token}"})

    return make


class EventFeed:
    """Delivers CloudEvents to the app the way the relay does: over HTTP, with a service
    token (`typ` service, `sub` svc-cases, no org)."""

    def __init__(self, client: httpx.AsyncClient, minter: TokenMinter) -> None:
        self.client = client
        token = minter.mint(org=None, roles=[], sub="svc-cases", typ="service")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/cloudevents+json",
        }

    def envelope(
        self,
        type: str,
        data: dict[str, Any],
        *,
        org_id: uuid.UUID | None,
        event_id: uuid.UUID | None = None,
        time: datetime | None = None,
        source: str = "/cases",
    ) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": str(event_id or uuid.uuid4()),
            "source": source,
            "type": type,
            "subject": f"{type.split('.')[1]}/x",
            "time": (time or datetime.now(UTC)).isoformat(),
            "datacontenttype": "application/json",
            "orgid": str(org_id) if org_id else None,
            "data": data,
        }

    async def send(self, envelope: dict[str, Any]) -> str:
        response = await self.client.post(
            f"/{SERVICE}/internal/events", content=json.dumps(envelope), headers=self.headers
        )
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    async def publish(self, type: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        envelope = self.envelope(type, data, **kw)
        await self.send(envelope)
        return envelope


@pytest.fixture
def events(client: httpx.AsyncClient, minter: TokenMinter) -> EventFeed:
    return EventFeed(client, minter)


# ----------------------------------------------------------------------------- mail


class Collector:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Collector]]:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, collector
    finally:
        controller.stop()


@pytest.fixture
def use_smtp(app: Any) -> Iterator[Any]:
    """`use_smtp(port)`: the worker sends through a real SMTP server on 127.0.0.1."""
    original = app.state.worker.mailer

    def switch(port: int) -> None:
        settings = app.state.settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 5}
        )
        app.state.worker.mailer = Mailer(settings)

    yield switch
    app.state.worker.mailer = original
