"""Deprovisioning over SCIM at the gateway: `active: false` (Okta's PATCH, Entra's string
`"False"`) or DELETE stops the person's refresh and access tokens on the very next request,
and stages, in the same transaction, `upstander.person.deactivated` (with the externalId) and
`upstander.access.changed` for every service's directory projection."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from identity_support import bearer, password_token
from scim_support import ENTERPRISE, SCIM, create, okta_user, patch, scim_headers, unique_email
from sqlalchemy import select

from upstander.gateway.models import Outbox

PASSWORD = "a-long-password-1"
REVOKED = "https://upstander.dev/problems/token-revoked"
SERVICES = {"intake", "cases", "training", "notify"}


@pytest.fixture(scope="module")
async def scim(gateway: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    return await scim_headers(gateway, admin_headers)


async def _signed_in_person(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], scim: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    user = await create(gateway, scim, okta_user(unique_email("leaver")))
    # The person sets a password (as an admin would for a tool that signs in with one).
    changed = await gateway.patch(
        f"/identity/v1/people/{user['id']}",
        json={"password": PASSWORD, "roles": ["investigator"]},
        headers=admin_headers,
    )
    assert changed.status_code == 200, changed.text
    return user["id"], await password_token(gateway, user["userName"], PASSWORD, org="demo")


async def _staged(gateway_app: FastAPI, type_: str, subject: str) -> list[tuple[str, dict]]:
    async with gateway_app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Outbox)
            .where(Outbox.type == type_, Outbox.subject == subject)
            .order_by(Outbox.seq)
        )
        return [(row.destination, json.loads(row.payload or b"{}")) for row in rows]


async def _assert_tokens_dead(gateway: httpx.AsyncClient, signed_in: dict[str, Any]) -> None:
    access = await gateway.get("/identity/v1/people", headers=bearer(signed_in["access_token"]))
    assert access.status_code == 401 and access.json()["type"] == REVOKED
    refreshed = await gateway.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]},
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "value": {"active": False}},  # Okta
        {"op": "Replace", "path": "active", "value": "False"},  # Entra
    ],
)
async def test_patching_active_off_kills_tokens_and_tells_every_service(
    gateway: httpx.AsyncClient,
    gateway_app: FastAPI,
    admin_headers: dict[str, str],
    scim: dict[str, str],
    operation: dict[str, Any],
) -> None:
    person_id, signed_in = await _signed_in_person(gateway, admin_headers, scim)
    works = await gateway.get("/identity/v1/people", headers=bearer(signed_in["access_token"]))
    assert works.status_code == 200

    response = await patch(gateway, scim, person_id, [operation])
    assert response.status_code == 200 and response.json()["active"] is False
    await _assert_tokens_dead(gateway, signed_in)

    deactivated = await _staged(gateway_app, "upstander.person.deactivated", f"person/{person_id}")
    assert {destination for destination, _ in deactivated} == SERVICES
    data = deactivated[0][1]
    assert data["active"] is False and data["external_id"] is not None
    access = await _staged(gateway_app, "upstander.access.changed", f"person/{person_id}")
    assert {destination for destination, _ in access} == SERVICES
    assert access[-1][1]["active"] is False


async def test_delete_kills_tokens_too(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], scim: dict[str, str]
) -> None:
    person_id, signed_in = await _signed_in_person(gateway, admin_headers, scim)
    assert (await gateway.delete(f"{SCIM}/Users/{person_id}", headers=scim)).status_code == 204
    await _assert_tokens_dead(gateway, signed_in)


async def test_a_manager_change_is_announced_with_the_new_reporting_line(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, scim: dict[str, str]
) -> None:
    manager = await create(gateway, scim, okta_user(unique_email("boss")))
    user = await create(gateway, scim, okta_user(unique_email("report")))
    response = await patch(
        gateway,
        scim,
        user["id"],
        [{"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": manager["id"]}}],
    )
    assert response.status_code == 200, response.text
    updated = await _staged(gateway_app, "upstander.person.updated", f"person/{user['id']}")
    assert updated and updated[-1][1]["manager_id"] == manager["id"]
    assert str(uuid.UUID(updated[-1][1]["person_id"])) == user["id"]
