"""Gateway fixtures: one in-process gateway on a fresh database (the selected backend) per
test session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from harness import database_url
from identity_support import bearer, password_token

from upstander.gateway.app import create_app
from upstander.gateway.identity import service
from upstander.gateway.identity.schemas import ClientCreate, PersonCreate
from upstander.gateway.settings import Settings
from upstander.kit.auth import Role

BASE_URL = "http://127.0.0.1:8000"


@pytest.fixture(scope="session")
async def gateway_app(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """The gateway on a fresh database of the selected backend (`test_backend`)."""
    url = await database_url("gateway", tmp_path_factory.mktemp("gateway"))
    # Tests sign in far more often than a person does: the rate limit has its own tests.
    settings = Settings(
        database_url=url,
        log_json=False,
        relay_background=False,
        auth_rate_limit_per_minute=100_000,
        auth_account_rate_limit_per_minute=100_000,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield app


@pytest.fixture(scope="session")
async def gateway(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(gateway_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture(scope="session")
async def admin_headers(gateway: httpx.AsyncClient) -> dict[str, str]:
    body = await password_token(gateway, "admin@demo.example")
    return bearer(body["access_token"])


@dataclass
class OtherOrg:
    org_id: uuid.UUID
    admin_email: str
    password: str
    headers: dict[str, str]
    person_id: uuid.UUID
    client_pk: uuid.UUID


@pytest.fixture(scope="session")
async def org_b(gateway_app: FastAPI, gateway: httpx.AsyncClient) -> OtherOrg:
    """A second organisation, made through the service layer, with its own admin."""
    password = "beta-admin-password"
    async with gateway_app.state.sessionmaker() as session:
        org = await service.create_org(session, slug="beta", name="Beta Campaign")
        principal = service.system_principal(org.id)
        admin = await service.create_person(
            session,
            principal,
            PersonCreate(
                email="admin@beta.example", name="Beta Admin", roles=[Role.ADMIN], password=password
            ),
        )
        person = await service.create_person(
            session, principal, PersonCreate(email="worker@beta.example", name="Beta Worker")
        )
        client, _secret = await service.create_client(
            session, principal, ClientCreate(name="Beta HR", scopes=["cases:read"])
        )
        await session.commit()
    token = await password_token(gateway, admin.email, password)
    return OtherOrg(
        org.id, admin.email, password, bearer(token["access_token"]), person.id, client.id
    )
