"""Helpers for the SCIM tests: a provisioning client (an API client granted `scim`) and the
request shapes Okta and Microsoft Entra ID send, copied from their published SCIM guides."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

SCIM = "/scim/v2"
SCIM_JSON = "application/scim+json"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UPSTANDER = "urn:upstander:params:scim:schemas:extension:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def scim_headers(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], scopes: tuple[str, ...] = ("scim",)
) -> dict[str, str]:
    """The bearer token of a new API client granted `scopes`, as an IdP is configured."""
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": f"IdP {uuid.uuid4().hex[:6]}", "scopes": list(scopes)},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], body["client_secret"]),
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}", "Accept": SCIM_JSON}


def unique_email(prefix: str = "scim") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@demo.example"


def okta_user(email: str, external_id: str | None = None) -> dict[str, Any]:
    """Okta's "Create the user" request (Okta SCIM 2.0 guide)."""
    return {
        "schemas": [CORE],
        "userName": email,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": external_id or "00u" + uuid.uuid4().hex[:17],
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def entra_user(user_name: str, external_id: str | None = None) -> dict[str, Any]:
    """Entra's "Create User" request (Microsoft's SCIM endpoint guide)."""
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": external_id or str(uuid.uuid4()),
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
    }


async def create(
    gateway: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await gateway.post(
        f"{SCIM}/Users", json=body, headers={**headers, "Content-Type": SCIM_JSON}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def patch(
    gateway: httpx.AsyncClient,
    headers: dict[str, str],
    user_id: str,
    operations: list[dict[str, Any]],
    **extra: str,
) -> httpx.Response:
    return await gateway.patch(
        f"{SCIM}/Users/{user_id}",
        json={"schemas": [PATCH_OP], "Operations": operations},
        headers={**headers, "Content-Type": SCIM_JSON, **extra},
    )


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
