"""Fixtures for the training service: the app on the selected backend, callers with tokens.

The gateway (another team's service) is stood in for by the suite's `minter`
(tests/helpers.py), whose JWKS transport serves its key, so tokens minted here verify exactly
as the gateway's would."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import helpers
import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from upstander.kit.clock import FrozenClock
from upstander.training.app import create_app
from upstander.training.settings import Settings

SERVICE = "training"
JWKS_URL = helpers.JWKS_URL

# The suite's one token minter (tests/helpers.py); the `minter` fixture is tests/conftest.py's.
TokenMinter = helpers.TokenMinter


@dataclass
class Caller:
    """A person of an org; `headers` carry their bearer token."""

    org_id: uuid.UUID
    person_id: uuid.UUID
    headers: dict[str, str]


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    """The app's clock; a test that depends on time sets it first (`clock.set(...)`)."""
    return FrozenClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(
    test_backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    minter: TokenMinter,
    clock: FrozenClock,
) -> AsyncIterator[Any]:
    """The service on the selected backend (a fresh copy of the run's migrated template), once
    per module. Tests stay independent by using a fresh org each (every query is org-scoped)."""
    directory: Path = tmp_path_factory.mktemp(SERVICE)
    database_url = await helpers.fresh_database(SERVICE, directory)
    application = create_app(
        Settings(
            database_url=database_url,
            log_json=False,
            log_level="WARNING",
            relay_background=False,  # tests look at the outbox; nothing to deliver to
            reminders_background=False,  # tests call `app.state.reminders.run_once()`
        ),
        transport=minter.transport(),
        clock=clock,
    )
    async with LifespanManager(application):
        yield application
    await helpers.drop_database(database_url)


@pytest_asyncio.fixture(loop_scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def caller(minter: TokenMinter) -> Callable[..., Caller]:
    """`caller(*roles, org=None)`: a person of `org` (a fresh org by default) with `roles`."""

    def make(
        *roles: str, org: uuid.UUID | None = None, person: uuid.UUID | None = None, **claims: Any
    ) -> Caller:
        org_id = org or uuid.uuid4()
        person_id = person or uuid.uuid4()
        token = minter.mint(org=org_id, roles=list(roles), sub=person_id, **claims)
        return Caller(org_id, person_id, {"Authorization": f"Bearer {token}"})

    return make


class Directory:
    """Feeds the service `upstander.person.*` events the way the gateway's relay would."""

    def __init__(self, client: httpx.AsyncClient, minter: TokenMinter, clock: FrozenClock):
        self.client = client
        self.clock = clock
        token = minter.mint(org=uuid.uuid4(), roles=[], typ="service", sub="svc-gateway")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/cloudevents+json",
        }

    async def send(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> httpx.Response:
        envelope = {
            "specversion": "1.0",
            "id": str(event_id or uuid.uuid4()),
            "source": "/gateway",
            "type": event_type,
            "subject": f"person/{data['person_id']}",
            "time": (at or self.clock.now()).isoformat(),
            "orgid": str(data["org_id"]),
            "data": data,
        }
        response = await self.client.post(
            "/training/internal/events", content=json.dumps(envelope), headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response

    async def hire(
        self,
        org: uuid.UUID,
        *,
        roles: tuple[str, ...] = ("staff",),
        manager: dict[str, Any] | None = None,
        start: date | None = None,
        location: str | None = None,
        leadership: bool = False,
        name: str | None = None,
        email: str | None = None,
    ) -> dict[str, Any]:
        person_id = uuid.uuid4()
        data: dict[str, Any] = {
            "person_id": str(person_id),
            "org_id": str(org),
            "email": email or f"p{person_id.hex[:10]}@demo.example",
            "name": name or f"Person {person_id.hex[:6]}",
            "title": None,
            "roles": list(roles),
            "manager_id": manager["person_id"] if manager else None,
            "is_leadership": leadership,
            "start_date": (start or self.clock.now().date()).isoformat(),
            "location": location,
            "language": "en",
            "active": True,
        }
        await self.send("upstander.person.created", data)
        return data

    async def update(self, person: dict[str, Any], **changes: Any) -> dict[str, Any]:
        person.update(changes)
        await self.send("upstander.person.updated", person)
        return person

    async def deactivate(self, person: dict[str, Any]) -> dict[str, Any]:
        person["active"] = False
        await self.send("upstander.person.deactivated", person)
        return person


@pytest.fixture
def directory(client: httpx.AsyncClient, minter: TokenMinter, clock: FrozenClock) -> Directory:
    return Directory(client, minter, clock)
