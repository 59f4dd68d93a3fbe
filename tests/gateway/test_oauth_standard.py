"""OAuth 2.0 as the standards say, at the gateway: the discovery documents (RFC 8414, OpenID
Connect Discovery), token-endpoint errors in the RFC 6749 §5.2 shape for every failure
(malformed bodies, rate limits included), revocation (RFC 7009), introspection (RFC 7662),
logout, scope narrowing, and the scopes an admin may grant a client."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from harness import database_url
from identity_support import bearer, password_token

from upstander.gateway.app import create_app
from upstander.gateway.bootstrap import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from upstander.gateway.settings import Settings
from upstander.kit.scopes import CATALOGUE, PERSON_SCOPES, ROLE_SCOPES

PROBLEM = "application/problem+json"
TOKEN = "/auth/token"
REVOKE = "/auth/revoke"
INTROSPECT = "/auth/introspect"
LOGOUT = "/auth/logout"
PEOPLE = "/identity/v1/people"
DEMO = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """The RFC 6749 §5.2 members, and the RFC 9457 ones beside them."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert body["status"] == status
    assert body["type"].startswith("https://upstander.dev/problems/")
    assert body["title"] and body["detail"] == body["error_description"]
    assert response.headers["cache-control"] == "no-store"
    return body


async def client_token(
    gateway: httpx.AsyncClient, credentials: tuple[str, str], scope: str | None = None
) -> str:
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    response = await gateway.post(TOKEN, data=form, auth=credentials)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def register(
    gateway: httpx.AsyncClient, headers: dict[str, str], scopes: list[str]
) -> tuple[str, str]:
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": f"Client {uuid.uuid4().hex[:6]}", "scopes": scopes},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return created.json()["client_id"], created.json()["client_secret"]


# -- discovery ----------------------------------------------------------------------------------


async def test_the_authorization_server_metadata_says_what_is_true(gateway: httpx.AsyncClient):
    response = await gateway.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200, response.text
    document = response.json()
    base = str(gateway.base_url).rstrip("/")
    assert document["issuer"] == "upstander"  # what tokens carry as `iss`
    assert document["token_endpoint"] == base + TOKEN
    assert document["jwks_uri"] == base + "/.well-known/jwks.json"
    assert document["revocation_endpoint"] == base + REVOKE
    assert document["introspection_endpoint"] == base + INTROSPECT
    assert document["grant_types_supported"] == [
        "authorization_code",
        "password",
        "client_credentials",
        "refresh_token",
    ]
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert "none" in document["revocation_endpoint_auth_methods_supported"]
    assert document["scopes_supported"] == list(CATALOGUE)
    # The browser flow is the authorization code with PKCE (S256), and no implicit grant.
    assert document["authorization_endpoint"] == base + "/auth/authorize"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]


async def test_the_openid_configuration_agrees_with_the_rfc_8414_document(
    gateway: httpx.AsyncClient,
):
    oauth = (await gateway.get("/.well-known/oauth-authorization-server")).json()
    response = await gateway.get("/.well-known/openid-configuration")

    assert response.status_code == 200, response.text
    openid = response.json()
    for member in ("issuer", "token_endpoint", "jwks_uri", "scopes_supported"):
        assert openid[member] == oauth[member], member
    assert openid["subject_types_supported"] == ["public"]
    # Access tokens only: nothing claims ID tokens are issued.
    assert "id_token_signing_alg_values_supported" not in openid


async def test_the_documented_endpoints_serve_what_they_promise(gateway: httpx.AsyncClient):
    document = (await gateway.get("/.well-known/oauth-authorization-server")).json()
    path = httpx.URL(document["token_endpoint"]).path
    issued = await gateway.post(path, data={"grant_type": "client_credentials"}, auth=DEMO)
    keys = await gateway.get(httpx.URL(document["jwks_uri"]).path)

    assert issued.status_code == 200, issued.text
    kid = json.loads(base64.urlsafe_b64decode(issued.json()["access_token"].split(".")[0] + "=="))
    assert kid["kid"] in {key["kid"] for key in keys.json()["keys"]}


# -- token-endpoint errors ----------------------------------------------------------------------


async def test_a_missing_grant_type_is_400_invalid_request_not_422(gateway: httpx.AsyncClient):
    response = await gateway.post(TOKEN, data={"username": "someone@demo.example"})

    body = assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"]


async def test_an_empty_body_is_400_invalid_request(gateway: httpx.AsyncClient):
    response = await gateway.post(TOKEN)

    assert_oauth_error(response, 400, "invalid_request")


async def test_a_json_body_is_400_invalid_request(gateway: httpx.AsyncClient):
    response = await gateway.post(
        TOKEN, json={"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID}
    )

    body = assert_oauth_error(response, 400, "invalid_request")
    assert "x-www-form-urlencoded" in body["error_description"]


async def test_a_parameter_sent_twice_is_400_invalid_request(gateway: httpx.AsyncClient):
    response = await gateway.post(
        TOKEN,
        content="grant_type=client_credentials&grant_type=password",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    body = assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"]


async def test_an_oversized_parameter_is_400_invalid_request(gateway: httpx.AsyncClient):
    response = await gateway.post(
        TOKEN, data={"grant_type": "password", "username": "x" * 400, "password": "p"}
    )

    assert_oauth_error(response, 400, "invalid_request")


async def test_an_unsupported_grant_is_400_unsupported_grant_type(gateway: httpx.AsyncClient):
    response = await gateway.post(TOKEN, data={"grant_type": "implicit"})

    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_a_wrong_client_secret_is_401_invalid_client_with_a_basic_challenge(
    gateway: httpx.AsyncClient,
):
    response = await gateway.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(DEMO_CLIENT_ID, "wrong")
    )

    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_a_client_authenticating_two_ways_is_400_invalid_request(
    gateway: httpx.AsyncClient,
):
    response = await gateway.post(
        TOKEN,
        data={"grant_type": "client_credentials", "client_secret": DEMO_CLIENT_SECRET},
        auth=DEMO,
    )

    assert_oauth_error(response, 400, "invalid_request")


async def test_a_wrong_password_is_400_invalid_grant(gateway: httpx.AsyncClient):
    response = await gateway.post(
        TOKEN,
        data={"grant_type": "password", "username": "admin@demo.example", "password": "no"},
    )

    assert_oauth_error(response, 400, "invalid_grant")


async def test_an_unknown_scope_is_400_invalid_scope(gateway: httpx.AsyncClient):
    response = await gateway.post(
        TOKEN, data={"grant_type": "client_credentials", "scope": "identity:write"}, auth=DEMO
    )

    body = assert_oauth_error(response, 400, "invalid_scope")
    assert "identity:write" in body["error_description"]


async def test_a_scope_the_client_was_not_granted_is_400_invalid_scope(
    gateway: httpx.AsyncClient,
):
    response = await gateway.post(
        TOKEN, data={"grant_type": "client_credentials", "scope": "people:write"}, auth=DEMO
    )

    assert_oauth_error(response, 400, "invalid_scope")


async def test_errors_are_problem_json_by_default_and_plain_json_when_asked(
    gateway: httpx.AsyncClient,
):
    default = await gateway.post(TOKEN, data={"grant_type": "implicit"})
    asked = await gateway.post(
        TOKEN, data={"grant_type": "implicit"}, headers={"accept": "application/json"}
    )

    assert default.headers["content-type"] == PROBLEM
    assert asked.headers["content-type"] == "application/json"
    assert asked.json()["error"] == default.json()["error"] == "unsupported_grant_type"


async def test_the_token_endpoints_errors_are_documented_as_oauth_errors(
    gateway_app: FastAPI,
):
    operation = gateway_app.openapi()["paths"][TOKEN]["post"]

    for status in ("400", "401", "429"):
        schema = operation["responses"][status]["content"][PROBLEM]["schema"]
        assert schema == {"$ref": "#/components/schemas/OAuthErrorBody"}, status
    assert "422" not in operation["responses"]


# -- rate limits: 429 carries an `error` too ---------------------------------------------------


@pytest.fixture(scope="module")
async def limited_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """A gateway whose /auth/* limits are tiny: 4 a minute per source, 2 per account."""
    settings = Settings(
        database_url=await database_url("gateway", tmp_path_factory.mktemp("limited")),
        log_json=False,
        relay_background=False,
        auth_rate_limit_per_minute=4,
        auth_account_rate_limit_per_minute=2,
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield app


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False, client=(ip, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def test_too_many_attempts_for_one_account_is_429_slow_down_with_retry_after(
    limited_gateway: FastAPI,
):
    async with _client(limited_gateway, "203.0.113.1") as client:
        for _ in range(2):
            await client.post(TOKEN, data={"grant_type": "client_credentials"}, auth=DEMO)
        refused = await client.post(TOKEN, data={"grant_type": "client_credentials"}, auth=DEMO)

    body = assert_oauth_error(refused, 429, "slow_down")
    assert body["type"].endswith("/rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert "access_token" not in refused.json()


async def test_too_many_requests_from_one_source_is_429_slow_down_with_retry_after(
    limited_gateway: FastAPI,
):
    async with _client(limited_gateway, "203.0.113.2") as client:
        for _ in range(4):
            await client.post(TOKEN, data={"grant_type": "implicit"})
        refused = await client.post(TOKEN, data={"grant_type": "client_credentials"}, auth=DEMO)

    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["error"] == "slow_down" and body["error_description"]
    assert body["type"].endswith("/rate-limited") and body["status"] == 429
    assert int(refused.headers["retry-after"]) >= 1


# -- scope narrowing ------------------------------------------------------------------------------


async def test_a_person_narrows_a_sign_in_and_the_token_opens_nothing_else(
    gateway: httpx.AsyncClient,
):
    response = await gateway.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": "admin@demo.example",
            "password": "upstander-demo",
            "scope": "intake:write",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    refreshed = await gateway.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )

    assert body["scope"] == "intake:write"
    assert claims_of(body["access_token"])["scope"] == "intake:write"
    refused = await gateway.get(PEOPLE, headers=bearer(body["access_token"]))
    assert refused.status_code == 403, refused.text
    assert refused.json()["missing_scopes"] == ["people:read"]
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    # A refresh keeps the sign-in as narrow as it was.
    assert refreshed.json()["scope"] == "intake:write"


async def test_a_person_cannot_ask_for_a_scope_beyond_their_roles(gateway: httpx.AsyncClient):
    response = await gateway.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": "staff@demo.example",
            "password": "upstander-demo",
            "scope": "cases:read",
        },
    )

    assert_oauth_error(response, 400, "invalid_scope")


async def test_a_persons_full_token_lists_the_scopes_of_their_roles(gateway: httpx.AsyncClient):
    body = await password_token(gateway, "auditor@demo.example")

    assert set(str(body["scope"]).split()) == {
        "audit:read",
        "intake:write",
        "people:read",
        "stats:read",
        "training:read",
        "xapi:read",
    }


# -- granting scopes ---------------------------------------------------------------------------


async def test_an_unknown_scope_cannot_be_granted(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    response = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Made up", "scopes": ["identity:write"]},
        headers=admin_headers,
    )

    assert response.status_code == 422, response.text


async def test_an_admin_never_grants_more_than_they_hold(gateway: httpx.AsyncClient):
    narrowed = await gateway.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": "admin@demo.example",
            "password": "upstander-demo",
            "scope": "clients:manage people:read",
        },
    )
    headers = bearer(narrowed.json()["access_token"])

    beyond = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Too much", "scopes": ["people:read", "people:write"]},
        headers=headers,
    )
    within = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Just right", "scopes": ["people:read"]},
        headers=headers,
    )

    assert beyond.status_code == 403, beyond.text
    assert beyond.json()["scopes"] == ["people:write"]
    assert within.status_code == 201, within.text
    assert within.json()["scopes"] == ["people:read"]


async def test_a_client_registering_a_client_never_grants_more_than_its_own_scopes(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    parent = await register(gateway, admin_headers, ["clients:manage", "people:read"])
    headers = bearer(await client_token(gateway, parent))

    beyond = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Child", "scopes": ["cases:read"]},
        headers=headers,
    )

    assert beyond.status_code == 403, beyond.text


# -- revocation (RFC 7009) -----------------------------------------------------------------------


async def test_revoking_a_refresh_token_ends_the_sign_in(gateway: httpx.AsyncClient):
    body = await password_token(gateway, "trainer@demo.example")
    access = str(body["access_token"])
    assert (await gateway.get(PEOPLE, headers=bearer(access))).status_code == 200

    revoked = await gateway.post(
        REVOKE, data={"token": body["refresh_token"], "token_type_hint": "refresh_token"}
    )
    refreshed = await gateway.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    after = await gateway.get(PEOPLE, headers=bearer(access))

    assert revoked.status_code == 200 and revoked.content == b""
    assert_oauth_error(refreshed, 400, "invalid_grant")
    assert after.status_code == 401, after.text
    assert after.json()["type"].endswith("/token-revoked")


async def test_a_revoked_access_token_is_refused_on_every_route_and_before_any_proxy(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    hr = await register(gateway, admin_headers, ["people:read"])
    token = await client_token(gateway, hr)
    other = await client_token(gateway, hr)
    assert (await gateway.get(PEOPLE, headers=bearer(token))).status_code == 200

    revoked = await gateway.post(REVOKE, data={"token": token}, auth=hr)
    own_route = await gateway.get(PEOPLE, headers=bearer(token))
    proxied = await gateway.get("/cases/v1/cases", headers=bearer(token))

    assert revoked.status_code == 200
    for response in (own_route, proxied):
        assert response.status_code == 401, response.text
        assert response.json()["type"] == "https://upstander.dev/problems/token-revoked"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # Only that token: the client's other token still works.
    assert (await gateway.get(PEOPLE, headers=bearer(other))).status_code == 200
    # Routes that take no token answer as documented, whatever stale token a probe carries.
    health = await gateway.get("/healthz", headers=bearer(token))
    metadata = await gateway.get("/.well-known/oauth-authorization-server", headers=bearer(token))
    assert health.status_code in (200, 503), health.text
    assert health.headers["content-type"] != "application/problem+json" or (
        health.json()["type"] != "https://upstander.dev/problems/token-revoked"
    )
    assert metadata.status_code == 200, metadata.text


async def test_revoking_an_unknown_token_is_200_as_the_rfc_says(gateway: httpx.AsyncClient):
    response = await gateway.post(REVOKE, data={"token": "not-a-token-of-ours"})

    assert response.status_code == 200


async def test_a_client_may_not_revoke_another_clients_token(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    mine = await register(gateway, admin_headers, ["people:read"])
    theirs = await client_token(gateway, DEMO)

    response = await gateway.post(REVOKE, data={"token": theirs}, auth=mine)

    assert_oauth_error(response, 400, "unauthorized_client")
    assert (await gateway.get("/identity/v1/people", headers=bearer(theirs))).status_code == 403


async def test_revocation_errors_are_oauth_errors(gateway: httpx.AsyncClient):
    missing = await gateway.post(REVOKE, data={"token_type_hint": "access_token"})
    as_json = await gateway.post(REVOKE, json={"token": "x"})
    wrong_client = await gateway.post(REVOKE, data={"token": "x"}, auth=(DEMO_CLIENT_ID, "no"))

    assert_oauth_error(missing, 400, "invalid_request")
    assert_oauth_error(as_json, 400, "invalid_request")
    assert_oauth_error(wrong_client, 401, "invalid_client")


# -- introspection (RFC 7662) ----------------------------------------------------------------------


async def test_introspection_describes_an_active_client_token(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    resource_server = await register(gateway, admin_headers, ["people:read"])
    token = await client_token(gateway, DEMO, scope="cases:read")

    response = await gateway.post(INTROSPECT, data={"token": token}, auth=resource_server)

    assert response.status_code == 200, response.text
    answer = response.json()
    claims = claims_of(token)
    assert answer["active"] is True
    assert answer["scope"] == "cases:read"
    assert answer["client_id"] == answer["sub"] == DEMO_CLIENT_ID
    assert answer["exp"] == claims["exp"] and answer["jti"] == claims["jti"]
    assert answer["token_type"] == "Bearer" and answer["typ"] == "client"


async def test_introspection_of_a_person_tells_ids_and_scopes_never_an_email(
    gateway: httpx.AsyncClient,
):
    body = await password_token(gateway, "investigator@demo.example")

    access = await gateway.post(INTROSPECT, data={"token": body["access_token"]}, auth=DEMO)
    refresh = await gateway.post(
        INTROSPECT,
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=DEMO,
    )

    assert access.json()["active"] is True
    assert access.json()["sub"] == claims_of(str(body["access_token"]))["sub"]
    assert "cases:content" in access.json()["scope"].split()
    assert refresh.json()["active"] is True
    assert refresh.json()["token_type"] == "refresh_token"
    assert "@" not in access.text + refresh.text


async def test_revoked_expired_unknown_or_foreign_tokens_introspect_as_inactive(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b
):
    revoked = await client_token(gateway, DEMO)
    await gateway.post(REVOKE, data={"token": revoked})
    foreign = (await password_token(gateway, org_b.admin_email, org_b.password))["access_token"]

    answers = [
        (await gateway.post(INTROSPECT, data={"token": token}, auth=DEMO)).json()
        for token in (revoked, "garbage", str(foreign))
    ]

    assert answers == [{"active": False}] * 3


async def test_introspection_needs_an_authenticated_client(gateway: httpx.AsyncClient):
    token = await client_token(gateway, DEMO)

    anonymous = await gateway.post(INTROSPECT, data={"token": token})
    wrong = await gateway.post(INTROSPECT, data={"token": token}, auth=(DEMO_CLIENT_ID, "no"))

    assert_oauth_error(anonymous, 401, "invalid_client")
    assert_oauth_error(wrong, 401, "invalid_client")
    assert "active" not in anonymous.json()


# -- logout ---------------------------------------------------------------------------------------


async def test_logout_ends_the_sign_in_its_access_and_refresh_tokens(gateway: httpx.AsyncClient):
    body = await password_token(gateway, "case_manager@demo.example")
    headers = bearer(body["access_token"])
    assert (await gateway.get(PEOPLE, headers=headers)).status_code == 200

    first = await gateway.post(LOGOUT, headers=headers)
    again = await gateway.post(LOGOUT, headers=headers)
    after = await gateway.get(PEOPLE, headers=headers)
    refreshed = await gateway.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )

    assert first.status_code == again.status_code == 204
    assert after.status_code == 401
    assert after.json()["type"].endswith("/token-revoked")
    assert_oauth_error(refreshed, 400, "invalid_grant")


async def test_logout_with_the_refresh_token_ends_every_access_token_of_the_sign_in(
    gateway: httpx.AsyncClient,
):
    body = await password_token(gateway, "reviewer@demo.example")
    rotated = await gateway.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    newer = rotated.json()

    response = await gateway.post(LOGOUT, data={"refresh_token": newer["refresh_token"]})

    assert response.status_code == 204
    for access in (body["access_token"], newer["access_token"]):
        assert (await gateway.get(PEOPLE, headers=bearer(access))).status_code == 401


async def test_logout_without_a_token_is_400_invalid_request(gateway: httpx.AsyncClient):
    response = await gateway.post(LOGOUT)

    assert_oauth_error(response, 400, "invalid_request")


async def test_another_sign_in_of_the_same_person_survives_a_logout(gateway: httpx.AsyncClient):
    first = await password_token(gateway, "auditor@demo.example")
    second = await password_token(gateway, "auditor@demo.example")

    await gateway.post(LOGOUT, headers=bearer(first["access_token"]))

    assert (await gateway.get(PEOPLE, headers=bearer(second["access_token"]))).status_code == 200


# -- the OpenAPI document --------------------------------------------------------------------------


async def test_the_gateways_operations_declare_the_scopes_they_need(gateway_app: FastAPI):
    document = gateway_app.openapi()
    flows = document["components"]["securitySchemes"]["OAuth2"]["flows"]
    people = document["paths"][PEOPLE]

    assert flows["clientCredentials"]["tokenUrl"] == TOKEN
    assert flows["password"]["tokenUrl"] == TOKEN
    assert flows["authorizationCode"]["authorizationUrl"] == "/auth/authorize"
    assert flows["authorizationCode"]["tokenUrl"] == TOKEN
    assert set(flows["clientCredentials"]["scopes"]) == set(CATALOGUE)
    assert document["components"]["securitySchemes"]["BearerJWT"]["scheme"] == "bearer"
    assert {"OAuth2": ["people:read"]} in people["get"]["security"]
    assert {"OAuth2": ["people:write"]} in people["post"]["security"]
    assert {"OAuth2": ["clients:manage"]} in document["paths"]["/identity/v1/clients"]["post"][
        "security"
    ]
    assert {} in document["paths"][TOKEN]["post"]["security"]


# -- the documentation -----------------------------------------------------------------------

AUTH_DOC = Path(__file__).resolve().parents[2] / "docs" / "auth.md"


def test_docs_list_every_scope_of_the_catalogue():
    text = AUTH_DOC.read_text()
    rows = set(re.findall(r"^\| `([a-z:]+)` \|", text, re.M))

    assert set(CATALOGUE) <= rows


def test_docs_say_what_each_role_maps_to_as_the_code_does():
    text = AUTH_DOC.read_text()
    table = text.split("## What each role amounts to")[1].split("##")[0]
    documented = {
        role: set(re.findall(r"`([a-z:]+)`", scopes)) - PERSON_SCOPES
        for role, scopes in re.findall(r"^\| `([a-z_]+)` \| (.*) \|$", table, re.M)
    }

    for role, scopes in ROLE_SCOPES.items():
        if role == "admin":
            assert scopes == frozenset(CATALOGUE) and "every scope of the catalogue" in table
        else:
            assert documented[str(role)] == set(scopes), role
