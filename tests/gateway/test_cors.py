"""CORS at the gateway, per organisation and per client: origins configured through the API,
preflights answered for every route (the services' too, xAPI's headers included), the
headers browser scripts need exposed, and an origin's permission tied to its organisation's
tokens."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from identity_support import bearer

ORG_ORIGIN = "https://campaign.example"
CLIENT_ORIGIN = "https://app.frontend.example"
XAPI_HEADERS = "x-experience-api-version, authorization, content-type, if-match, if-none-match"
EXPOSED = {
    "etag",
    "idempotent-replayed",
    "retry-after",
    "link",
    "x-experience-api-consistent-through",
}


def preflight_headers(origin: str, method: str = "PUT", headers: str = XAPI_HEADERS) -> dict:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def listed(response: httpx.Response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(name, "").split(",") if item}


@pytest.fixture(scope="module")
async def origins(gateway: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    org = await gateway.put(
        "/identity/v1/orgs/current/cors", json={"origins": [ORG_ORIGIN]}, headers=admin_headers
    )
    assert org.status_code == 200, org.text
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Browser app", "scopes": ["people:read"]},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    client = await gateway.put(
        f"/identity/v1/clients/{created.json()['id']}/browser",
        json={"public": True, "allowed_origins": [CLIENT_ORIGIN + ":443/"]},
        headers=admin_headers,
    )
    assert client.status_code == 200, client.text
    assert client.json()["allowed_origins"] == [CLIENT_ORIGIN]  # normalised


@pytest.mark.parametrize(
    "path",
    [
        "/training/v1/xapi/statements",
        "/training/v1/xapi/activities/state",
        "/cases/v1/cases/7b0c3f0e-6a53-4b55-9a55-3f5f0c8f2a10",
        "/identity/v1/people",
        "/auth/token",
        "/intake/v1/no-such-route",
    ],
)
@pytest.mark.parametrize("origin", [ORG_ORIGIN, CLIENT_ORIGIN])
async def test_a_preflight_from_an_allowed_origin_is_answered_for_every_route(
    gateway: httpx.AsyncClient, origins: None, path: str, origin: str
):
    response = await gateway.options(path, headers=preflight_headers(origin))

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin
    assert {"put", "post", "get", "delete", "patch"} <= listed(
        response, "access-control-allow-methods"
    )
    assert {
        "x-experience-api-version",
        "authorization",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
    } <= listed(response, "access-control-allow-headers")
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in listed(response, "vary")
    assert "access-control-allow-credentials" not in response.headers
    # The edge's security headers are on the preflight too.
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_preflight_from_another_origin_is_refused(
    gateway: httpx.AsyncClient, origins: None
):
    response = await gateway.options(
        "/training/v1/xapi/statements", headers=preflight_headers("https://evil.example")
    )

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in response.headers


async def test_responses_to_an_allowed_origin_expose_the_headers_scripts_need(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], origins: None
):
    response = await gateway.get(
        "/identity/v1/people", headers={**admin_headers, "Origin": ORG_ORIGIN}
    )
    problem = await gateway.get("/identity/v1/people", headers={"Origin": ORG_ORIGIN})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORG_ORIGIN
    assert EXPOSED <= listed(response, "access-control-expose-headers")
    assert "origin" in listed(response, "vary")
    # Errors too: the script can read the problem document.
    assert problem.status_code == 401
    assert problem.headers["access-control-allow-origin"] == ORG_ORIGIN


async def test_an_origin_serves_its_own_organisations_tokens_only(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], origins: None, org_b: Any
):
    beta_origin = f"https://beta-{uuid.uuid4().hex[:6]}.example"
    foreign = await gateway.get(
        "/identity/v1/people", headers={**org_b.headers, "Origin": ORG_ORIGIN}
    )
    before = await gateway.get(
        "/identity/v1/people", headers={**org_b.headers, "Origin": beta_origin}
    )
    configured = await gateway.put(
        "/identity/v1/orgs/current/cors", json={"origins": [beta_origin]}, headers=org_b.headers
    )
    after = await gateway.get(
        "/identity/v1/people", headers={**org_b.headers, "Origin": beta_origin}
    )
    mine_elsewhere = await gateway.get(
        "/identity/v1/people", headers={**admin_headers, "Origin": beta_origin}
    )

    assert foreign.status_code == 200  # the API answers; the browser may not read it
    assert "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in before.headers
    assert configured.status_code == 200, configured.text
    # Effective at once on this replica.
    assert after.headers["access-control-allow-origin"] == beta_origin
    assert "access-control-allow-origin" not in mine_elsewhere.headers


async def test_requests_without_a_token_are_served_to_any_allowed_origin(
    gateway: httpx.AsyncClient, origins: None
):
    response = await gateway.get(
        "/.well-known/oauth-authorization-server", headers={"Origin": CLIENT_ORIGIN}
    )
    other = await gateway.get(
        "/.well-known/oauth-authorization-server", headers={"Origin": "https://evil.example"}
    )

    assert response.headers["access-control-allow-origin"] == CLIENT_ORIGIN
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    "origin",
    ["*", "http://campaign.example", "https://campaign.example/app", "null", "ftp://x.example"],
)
async def test_an_origin_must_be_an_https_origin(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], origin: str
):
    response = await gateway.put(
        "/identity/v1/orgs/current/cors", json={"origins": [origin]}, headers=admin_headers
    )
    assert response.status_code == 422, response.text


async def test_the_org_origins_are_read_back_with_an_etag(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], origins: None
):
    response = await gateway.get("/identity/v1/orgs/current/cors", headers=admin_headers)

    assert response.status_code == 200
    assert response.json()["origins"] == [ORG_ORIGIN]
    stale = await gateway.put(
        "/identity/v1/orgs/current/cors",
        json={"origins": []},
        headers={**admin_headers, "If-Match": '"999"'},
    )
    assert stale.status_code == 412


async def test_a_client_without_the_scope_cannot_change_origins(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    from upstander.gateway.bootstrap import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    token = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    response = await gateway.put(
        "/identity/v1/orgs/current/cors",
        json={"origins": ["https://x.example"]},
        headers=bearer(token.json()["access_token"]),
    )
    assert response.status_code == 403
