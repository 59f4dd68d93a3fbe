"""Through the gateway: an admin who sits above the respondent registers an API client with
the `reviewer` role and signs it in with client_credentials. The client acts for its owner
and within what they may see: the case hidden from the admin stays hidden from the client
(case, messages, allegations, listing, audit trail), while a client registered by an admin
outside the chain reads it."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from harness import Platform
from sqlalchemy import select

PASSWORD = "a-long-password-1"


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the services verify; the test only looks)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def bearer(platform: Platform, email: str, password: str | None = None) -> dict[str, str]:
    if password is None:
        return await platform.auth(email)
    return await platform.auth(email, password=password)


async def new_person(
    platform: Platform, email: str, roles: list[str], manager_id: str | None = None
) -> str:
    response = await platform.gateway.post(
        "/identity/v1/people",
        json={
            "email": email,
            "name": "E2E " + email.split("@")[0],
            "roles": roles,
            "manager_id": manager_id,
            "password": PASSWORD,
        },
        headers=await platform.auth("admin@demo.example"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def register_client(platform: Platform, headers: dict[str, str]) -> dict[str, str]:
    """Register a `reviewer` client as the caller; return its client_credentials bearer."""
    created = await platform.gateway.post(
        "/identity/v1/clients",
        json={"name": "HR sync", "roles": ["reviewer"], "scopes": ["cases:read"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": body["client_id"],
            "client_secret": body["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    claims = claims_of(access)
    assert claims["typ"] == "client" and claims["owner"] == body["created_by"]
    return {"authorization": f"Bearer {access}"}


async def reads(platform: Platform, case_id: str, headers: dict[str, str]) -> list[int]:
    url = f"/cases/v1/cases/{case_id}"
    return [
        (await platform.gateway.get(url + path, headers=headers)).status_code
        for path in ("", "/messages", "/allegations")
    ]


async def test_a_client_registered_by_an_admin_above_the_respondent_cannot_read_the_case(
    platform: Platform,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    admin = await platform.auth("admin@demo.example")
    admin_id = claims_of(admin["authorization"].split()[1])["sub"]
    respondent = await new_person(
        platform, f"respondent-{suffix}@demo.example", ["staff"], admin_id
    )
    outsider_email = f"outside-admin-{suffix}@demo.example"
    await new_person(platform, outsider_email, ["admin"])
    await platform.drain()

    filed = await platform.gateway.post(
        "/intake/v1/reports",
        json={
            "org": "demo",
            "mode": "anonymous",
            "description": "He kept touching my shoulder after I asked him to stop.",
            "categories": ["sexual_harassment"],
            "people_involved": [{"person_id": respondent, "role": "subject"}],
        },
    )
    assert filed.status_code == 201, filed.text
    await platform.drain()
    manager = await platform.auth("case_manager@demo.example")
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
    [case] = [c for c in listing.json()["items"] if c["report_id"] == filed.json()["report_id"]]
    sent = await platform.gateway.post(
        f"/cases/v1/cases/{case['id']}/messages",
        json={"body": "Thank you for telling us."},
        headers=manager,
    )
    assert sent.status_code == 201, sent.text

    # The admin is above the respondent: the case is hidden from them...
    assert await reads(platform, case["id"], admin) == [404, 404, 404]
    # ...and from the reviewer client they register, whatever its role.
    conflicted = await register_client(platform, admin)
    assert await reads(platform, case["id"], conflicted) == [404, 404, 404]
    listed = await platform.gateway.get("/cases/v1/cases?limit=200", headers=conflicted)
    assert listed.status_code == 200
    assert case["id"] not in [c["id"] for c in listed.json()["items"]]
    # The admin's audit trail withholds the case too.
    trail = await platform.gateway.get("/cases/v1/audit?limit=200", headers=admin)
    assert trail.status_code == 200, trail.text
    assert case["id"] not in trail.text

    # The same kind of client, registered by an admin outside the chain, reads it.
    outsider = await bearer(platform, outsider_email, PASSWORD)
    clear = await register_client(platform, outsider)
    assert await reads(platform, case["id"], clear) == [200, 200, 200]


async def test_a_client_registered_by_the_platform_sees_no_case(platform: Platform) -> None:
    from upstander.gateway.identity import service
    from upstander.gateway.identity.schemas import ClientCreate
    from upstander.gateway.models import Org
    from upstander.kit.auth import Role

    filed = await platform.gateway.post(
        "/intake/v1/reports",
        json={
            "org": "demo",
            "mode": "anonymous",
            "description": "Comments about my body at the phone bank.",
            "categories": ["sexual_harassment"],
        },
    )
    assert filed.status_code == 201, filed.text
    await platform.drain()
    # Made by provisioning (no person registers it): its tokens carry no owner.
    async with platform.apps["gateway"].state.sessionmaker() as session:
        org = await session.scalar(select(Org).where(Org.slug == "demo"))
        assert org is not None
        client, secret = await service.create_client(
            session,
            service.system_principal(org.id),
            ClientCreate(name="Provisioned", roles=[Role.REVIEWER]),
        )
        await session.commit()
    assert client.created_by is None
    token = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    assert token.status_code == 200, token.text
    assert "owner" not in claims_of(token.json()["access_token"])
    headers = {"authorization": f"Bearer {token.json()['access_token']}"}

    response = await platform.gateway.get("/cases/v1/cases?limit=200", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
