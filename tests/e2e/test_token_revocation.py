"""Tokens die with access, across the platform: once an admin deactivates or demotes a person
(or deactivates an API client) and the gateway's events have reached the services, the token
signed before the change is refused (401 `token-revoked`) by every service — cases, notify,
training, intake — while a token signed after it works, with the roles held now."""

from __future__ import annotations

import uuid

import httpx
from harness import Platform

REVOKED = "https://upstander.dev/problems/token-revoked"
PASSWORD = "a-long-password-1"
PEOPLE = "/identity/v1/people"

# Routes that take a staff token in each service, and what they answer a case manager.
CASES = ("GET", "/cases/v1/cases?limit=5", None)
NOTIFY = ("GET", "/notify/v1/inbox", None)
TRAINING = ("GET", "/training/v1/completions", None)
# Admins only: a case manager's token gets past authentication and is refused by role (403).
INTAKE = ("PUT", "/intake/v1/forms/demo", {})


async def _person(platform: Platform, roles: list[str]) -> tuple[str, str]:
    email = f"revoked-{uuid.uuid4().hex[:10]}@demo.example"
    response = await platform.gateway.post(
        PEOPLE,
        json={"email": email, "name": "Robin Roe", "roles": roles, "password": PASSWORD},
        headers=await platform.auth("admin@demo.example"),
    )
    assert response.status_code == 201, response.text
    await platform.drain()
    return str(response.json()["id"]), email


async def _sign_in(platform: Platform, email: str) -> dict[str, str]:
    response = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD, "org": "demo"},
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def _call(
    platform: Platform, route: tuple[str, str, object], headers: dict[str, str]
) -> httpx.Response:
    method, path, body = route
    return await platform.gateway.request(method, path, json=body, headers=headers)


def _assert_revoked(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 401, (where, response.text)
    assert response.headers["content-type"] == "application/problem+json", where
    assert response.json()["type"] == REVOKED, (where, response.text)
    assert 'error="invalid_token"' in response.headers["www-authenticate"], where


async def _change(platform: Platform, method: str, person_id: str, **body: object) -> None:
    response = await platform.gateway.request(
        method,
        f"{PEOPLE}/{person_id}",
        json=body or None,
        headers=await platform.auth("admin@demo.example"),
    )
    assert response.status_code in (200, 204), response.text
    await platform.drain()


async def test_a_deactivated_persons_token_is_refused_by_every_service(
    platform: Platform,
) -> None:
    person_id, email = await _person(platform, ["case_manager"])
    token = await _sign_in(platform, email)
    assert (await _call(platform, CASES, token)).status_code == 200
    assert (await _call(platform, NOTIFY, token)).status_code == 200
    assert (await _call(platform, TRAINING, token)).status_code == 200
    assert (await _call(platform, INTAKE, token)).status_code == 403

    await _change(platform, "DELETE", person_id)

    for route in (CASES, NOTIFY, TRAINING, INTAKE):
        _assert_revoked(await _call(platform, route, token))
    # Intake reads a token on one more path: an identified report. Refused, nothing filed.
    identified = await platform.gateway.post(
        "/intake/v1/reports",
        json={"org": "demo", "mode": "identified", "description": "x" * 40},
        headers=token,
    )
    _assert_revoked(identified)
    # And at the gateway itself, without waiting for any event.
    _assert_revoked(await platform.gateway.get(f"{PEOPLE}/{person_id}", headers=token))


async def test_a_reactivated_person_signs_in_again_and_their_old_token_stays_dead(
    platform: Platform,
) -> None:
    person_id, email = await _person(platform, ["case_manager"])
    old = await _sign_in(platform, email)
    await _change(platform, "DELETE", person_id)
    await _change(platform, "PATCH", person_id, active=True)

    new = await _sign_in(platform, email)
    for route in (CASES, NOTIFY, TRAINING):
        assert (await _call(platform, route, new)).status_code == 200, route
        _assert_revoked(await _call(platform, route, old))


async def test_a_demoted_persons_old_token_is_refused_and_a_new_one_works_with_the_new_roles(
    platform: Platform,
) -> None:
    person_id, email = await _person(platform, ["case_manager"])
    old = await _sign_in(platform, email)
    assert (await _call(platform, CASES, old)).status_code == 200

    await _change(platform, "PATCH", person_id, roles=["staff"])

    for route in (CASES, NOTIFY, TRAINING, INTAKE):
        _assert_revoked(await _call(platform, route, old))
    new = await _sign_in(platform, email)
    # Accepted everywhere (no 401), and judged by what the person may do now.
    assert (await _call(platform, NOTIFY, new)).status_code == 200
    assert (await _call(platform, TRAINING, new)).status_code == 200
    assert (await _call(platform, CASES, new)).status_code == 403
    assert (await _call(platform, INTAKE, new)).status_code == 403


async def test_a_token_signed_after_a_change_works_in_the_same_instant(
    platform: Platform,
) -> None:
    # The platform's clock is frozen: the change and the new sign-in happen in the same
    # second. The access version, not the time, tells them apart.
    person_id, email = await _person(platform, ["staff"])
    await _change(platform, "PATCH", person_id, roles=["staff", "trainer"])
    new = await _sign_in(platform, email)
    assert (await _call(platform, TRAINING, new)).status_code == 200
    assert (await _call(platform, NOTIFY, new)).status_code == 200


async def test_a_manager_change_leaves_the_persons_token_working(platform: Platform) -> None:
    manager_id, _ = await _person(platform, ["staff"])
    person_id, email = await _person(platform, ["case_manager"])
    token = await _sign_in(platform, email)
    await _change(platform, "PATCH", person_id, manager_id=manager_id)
    for route in (CASES, NOTIFY, TRAINING):
        assert (await _call(platform, route, token)).status_code == 200, route


async def test_a_deactivated_api_clients_token_is_refused_by_the_services(
    platform: Platform,
) -> None:
    admin = await platform.auth("admin@demo.example")
    created = await platform.gateway.post(
        "/identity/v1/clients",
        json={"name": "LMS sync", "scopes": ["training:read"], "roles": ["trainer"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    client = created.json()
    issued = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert issued.status_code == 200, issued.text
    token = {"authorization": f"Bearer {issued.json()['access_token']}"}
    assert (await _call(platform, TRAINING, token)).status_code == 200

    deleted = await platform.gateway.delete(f"/identity/v1/clients/{client['id']}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    await platform.drain()

    _assert_revoked(await _call(platform, TRAINING, token))
    _assert_revoked(await _call(platform, CASES, token))
