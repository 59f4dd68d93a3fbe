"""An API client is registered by a person, who answers for it: the gateway records them
(`created_by`) and signs the client's tokens with them as the `owner` claim, so services can
keep the client within what that person may see."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from fastapi import FastAPI
from identity_support import bearer
from sqlalchemy import select

from upstander.gateway.identity import service
from upstander.gateway.identity.schemas import ClientCreate
from upstander.gateway.models import Org
from upstander.kit.auth import Role


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def register(
    gateway: httpx.AsyncClient, headers: dict[str, str], roles: list[str]
) -> dict[str, Any]:
    created = await gateway.post(
        "/identity/v1/clients", json={"name": "Integration", "roles": roles}, headers=headers
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def client_token(gateway: httpx.AsyncClient, client_id: str, secret: str) -> str:
    response = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_a_client_is_owned_by_the_admin_who_registers_it(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    admin_id = claims_of(admin_headers["Authorization"].split()[1])["sub"]

    created = await register(gateway, admin_headers, ["reviewer"])
    token = await client_token(gateway, created["client_id"], created["client_secret"])
    fetched = await gateway.get(f"/identity/v1/clients/{created['id']}", headers=admin_headers)

    assert created["created_by"] == admin_id
    assert fetched.json()["created_by"] == admin_id
    assert claims_of(token)["owner"] == admin_id


async def test_a_client_registered_by_a_client_is_owned_by_that_client_s_owner(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    admin_id = claims_of(admin_headers["Authorization"].split()[1])["sub"]
    parent = await register(gateway, admin_headers, ["admin"])
    parent_token = await client_token(gateway, parent["client_id"], parent["client_secret"])

    child = await register(gateway, bearer(parent_token), ["reviewer"])
    child_token = await client_token(gateway, child["client_id"], child["client_secret"])

    assert child["created_by"] == admin_id
    assert claims_of(child_token)["owner"] == admin_id


async def test_a_client_made_by_the_platform_has_no_owner_and_its_tokens_name_none(
    gateway_app: FastAPI, gateway: httpx.AsyncClient
) -> None:
    async with gateway_app.state.sessionmaker() as session:
        org = await session.scalar(select(Org).where(Org.slug == "demo"))
        assert org is not None
        client, secret = await service.create_client(
            session,
            service.system_principal(org.id),
            ClientCreate(name="Provisioned", roles=[Role.REVIEWER]),
        )
        await session.commit()

    token = await client_token(gateway, client.client_id, secret)

    assert client.created_by is None
    assert "owner" not in claims_of(token)
