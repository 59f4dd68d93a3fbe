"""Tokens die with access, at the gateway: a deactivated person's refresh token fails at once
and their access token is refused by the gateway's own routes on the next request; so is a
demoted person's, a person's whose password an admin reset, a deactivated client's and an
inactive organisation's. Each change is counted in the token (`access_version`) and announced
to the services as `upstander.access.changed`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from identity_support import bearer, password_token
from sqlalchemy import select

from upstander.gateway.identity import service
from upstander.gateway.identity.schemas import PersonCreate
from upstander.gateway.models import Org, Outbox
from upstander.kit.auth import Role
from upstander.kit.revocation import ACCESS_CHANGED

REVOKED = "https://upstander.dev/problems/token-revoked"
PASSWORD = "a-long-password-1"
PEOPLE = "/identity/v1/people"


def _claims(token: object) -> dict[str, Any]:
    return dict(jwt.decode(str(token), options={"verify_signature": False}))


async def _person(
    gateway: httpx.AsyncClient, admin: dict[str, str], roles: list[str]
) -> tuple[str, str]:
    email = f"p-{uuid.uuid4().hex[:10]}@demo.example"
    response = await gateway.post(
        PEOPLE,
        json={"email": email, "name": "Pat Doe", "roles": roles, "password": PASSWORD},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), email


async def _sign_in(gateway: httpx.AsyncClient, email: str) -> dict[str, Any]:
    return dict(await password_token(gateway, email, PASSWORD, org="demo"))


def _assert_revoked(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == REVOKED
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def _access_events(gateway_app: FastAPI, subject: str) -> list[dict[str, Any]]:
    """The `upstander.access.changed` data the gateway staged about `subject`, for cases."""
    async with gateway_app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Outbox)
            .where(Outbox.type == ACCESS_CHANGED, Outbox.destination == "cases")
            .order_by(Outbox.seq)
        )
        found = [json.loads(row.payload or b"{}") for row in rows]
    return [data for data in found if data["subject"] == subject]


async def test_a_deactivated_persons_refresh_and_access_tokens_fail_at_once(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    person_id, email = await _person(gateway, admin_headers, ["case_manager"])
    signed_in = await _sign_in(gateway, email)
    mine = bearer(signed_in["access_token"])
    assert (await gateway.get(f"{PEOPLE}/{person_id}", headers=mine)).status_code == 200

    deleted = await gateway.delete(f"{PEOPLE}/{person_id}", headers=admin_headers)
    assert deleted.status_code == 204

    _assert_revoked(await gateway.get(f"{PEOPLE}/{person_id}", headers=mine))
    _assert_revoked(await gateway.get(PEOPLE, headers=mine))
    refreshed = await gateway.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]},
    )
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"


async def test_deactivation_is_announced_to_every_service_with_the_new_access_version(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    person_id, email = await _person(gateway, admin_headers, ["staff"])
    token = (await _sign_in(gateway, email))["access_token"]
    assert _claims(token)["access_version"] == 0

    patched = await gateway.patch(
        f"{PEOPLE}/{person_id}", json={"active": False}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text

    events = await _access_events(gateway_app, person_id)
    assert len(events) == 1
    event = events[0]
    assert (event["kind"], event["active"], event["version"]) == ("staff", False, 1)
    assert set(event) == {"kind", "subject", "org_id", "active", "version", "changed_at"}
    async with gateway_app.state.sessionmaker() as session:
        destinations = set(
            await session.scalars(
                select(Outbox.destination).where(
                    Outbox.type == ACCESS_CHANGED, Outbox.subject == f"person/{person_id}"
                )
            )
        )
    assert destinations == {"intake", "cases", "training", "notify"}


async def test_a_demoted_persons_old_token_is_refused_and_a_new_one_carries_the_new_roles(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    person_id, email = await _person(gateway, admin_headers, ["case_manager"])
    signed_in = await _sign_in(gateway, email)
    old = bearer(signed_in["access_token"])
    assert (await gateway.get(PEOPLE, headers=old)).status_code == 200

    demoted = await gateway.patch(
        f"{PEOPLE}/{person_id}", json={"roles": ["staff"]}, headers=admin_headers
    )
    assert demoted.status_code == 200, demoted.text

    _assert_revoked(await gateway.get(PEOPLE, headers=old))
    new = await _sign_in(gateway, email)
    assert _claims(new["access_token"])["roles"] == ["staff"]
    assert _claims(new["access_token"])["access_version"] == 1
    # Signed after the change: accepted, and judged by its new roles (staff may not read the
    # directory: 403, not 401).
    assert (await gateway.get(PEOPLE, headers=bearer(new["access_token"]))).status_code == 403
    # The refresh token survives a role change: it only ever mints the roles held now.
    refreshed = await gateway.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert _claims(refreshed.json()["access_token"])["roles"] == ["staff"]


async def test_a_change_of_manager_or_name_or_the_same_roles_again_is_no_access_change(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    manager_id, _ = await _person(gateway, admin_headers, ["staff"])
    person_id, email = await _person(gateway, admin_headers, ["case_manager"])
    mine = bearer((await _sign_in(gateway, email))["access_token"])

    for body in (
        {"manager_id": manager_id},
        {"is_leadership": True},
        {"name": "Pat Q. Doe"},
        {"roles": ["case_manager"]},
    ):
        patched = await gateway.patch(f"{PEOPLE}/{person_id}", json=body, headers=admin_headers)
        assert patched.status_code == 200, patched.text

    assert (await gateway.get(PEOPLE, headers=mine)).status_code == 200
    assert await _access_events(gateway_app, person_id) == []


async def test_a_password_an_admin_sets_ends_the_persons_access_tokens(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    person_id, email = await _person(gateway, admin_headers, ["case_manager"])
    mine = bearer((await _sign_in(gateway, email))["access_token"])
    reset = await gateway.patch(
        f"{PEOPLE}/{person_id}", json={"password": PASSWORD + "-new"}, headers=admin_headers
    )
    assert reset.status_code == 200, reset.text
    _assert_revoked(await gateway.get(PEOPLE, headers=mine))


async def test_a_deactivated_clients_token_is_refused_and_announced(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": "HR sync", "scopes": ["cases:read"], "roles": ["hr_integration"]},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    client = created.json()
    issued = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    assert _claims(token)["access_version"] == 0
    assert (await gateway.get(PEOPLE, headers=bearer(token))).status_code == 200

    deleted = await gateway.delete(f"/identity/v1/clients/{client['id']}", headers=admin_headers)
    assert deleted.status_code == 204, deleted.text

    _assert_revoked(await gateway.get(PEOPLE, headers=bearer(token)))
    events = await _access_events(gateway_app, client["client_id"])
    assert [(e["kind"], e["active"], e["version"]) for e in events] == [("client", False, 1)]


async def test_an_inactive_organisations_tokens_are_refused_and_announced(
    gateway: httpx.AsyncClient, gateway_app: FastAPI
) -> None:
    slug = f"gamma-{uuid.uuid4().hex[:6]}"
    async with gateway_app.state.sessionmaker() as session:
        org = await service.create_org(session, slug=slug, name="Gamma")
        admin = await service.create_person(
            session,
            service.system_principal(org.id),
            PersonCreate(
                email="admin@gamma.example",
                name="Gamma Admin",
                roles=[Role.ADMIN],
                password=PASSWORD,
            ),
        )
        await session.commit()
    token = (await password_token(gateway, admin.email, PASSWORD, org=slug))["access_token"]
    assert (await gateway.get(PEOPLE, headers=bearer(token))).status_code == 200

    async with gateway_app.state.sessionmaker() as session:
        row = await session.get(Org, org.id)
        assert row is not None
        row.active = False
        await session.commit()

    _assert_revoked(await gateway.get(PEOPLE, headers=bearer(token)))
    events = await _access_events(gateway_app, str(org.id))
    assert [(e["kind"], e["active"]) for e in events] == [("org", False)]
