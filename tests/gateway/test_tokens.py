"""Token issuing (each grant, refresh rotation) and token rejection at the gateway."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from identity_support import bearer, password_token

from upstander.gateway.auth.tokens import TokenIssuer
from upstander.gateway.bootstrap import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from upstander.gateway.settings import Settings
from upstander.kit.auth import PrincipalKind
from upstander.kit.settings import DEV_SERVICE_SECRET

PROBLEM = "application/problem+json"


def claims_of(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict[str, object]:
    return jwt.get_unverified_header(token)


async def test_password_grant_issues_a_short_lived_staff_token(gateway: httpx.AsyncClient):
    body = await password_token(gateway, "Case_Manager@demo.example")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"]
    claims = claims_of(str(body["access_token"]))
    assert claims["typ"] == "staff"
    assert claims["roles"] == ["case_manager"]
    assert claims["iss"] == "upstander" and claims["aud"] == "upstander"
    assert int(claims["exp"]) - int(claims["iat"]) <= 900  # type: ignore[call-overload]
    assert uuid.UUID(str(claims["sub"])) and uuid.UUID(str(claims["org"]))
    assert claims["jti"]


async def test_password_grant_accepts_the_org_slug(gateway: httpx.AsyncClient):
    body = await password_token(gateway, "trainer@demo.example", org="demo")
    assert claims_of(str(body["access_token"]))["roles"] == ["trainer"]


async def test_client_credentials_grant_with_form_fields(gateway: httpx.AsyncClient):
    response = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body or body["refresh_token"] is None
    assert body["scope"] == "cases:read training:write"
    claims = claims_of(body["access_token"])
    assert claims["typ"] == "client" and claims["sub"] == DEMO_CLIENT_ID and claims["org"]


async def test_client_credentials_grant_with_http_basic_and_narrower_scope(
    gateway: httpx.AsyncClient,
):
    response = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "cases:read"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["scope"] == "cases:read"


async def test_client_credentials_refuses_a_scope_beyond_the_clients(gateway: httpx.AsyncClient):
    response = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "cases:write"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_service_clients_get_service_tokens_without_org(gateway: httpx.AsyncClient):
    response = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("svc-cases", DEV_SERVICE_SECRET),
    )
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert claims["typ"] == "service" and claims["sub"] == "svc-cases"
    assert "org" not in claims and claims["scope"] == "events:publish" and claims["roles"] == []


async def test_wrong_client_secret_is_401_invalid_client(gateway: httpx.AsyncClient):
    response = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(DEMO_CLIENT_ID, "wrong"),
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


async def test_refresh_token_grant_rotates_and_old_token_is_rejected(gateway: httpx.AsyncClient):
    first = await password_token(gateway, "reviewer@demo.example")
    response = await gateway.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["roles"] == ["reviewer"]

    again = await gateway.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert again.status_code == 400
    assert again.headers["content-type"].startswith(PROBLEM)
    assert again.json()["error"] == "invalid_grant"


async def test_reusing_a_rotated_refresh_token_revokes_the_family(gateway: httpx.AsyncClient):
    first = await password_token(gateway, "investigator@demo.example")
    rotated = await gateway.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    current = rotated.json()["refresh_token"]
    replay = await gateway.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 400
    # The thief replayed the old token: the legitimate, newer one is now dead too.
    legit = await gateway.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": current}
    )
    assert legit.status_code == 400
    assert legit.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin@demo.example", "wrong-password"), ("nobody@demo.example", "wrong-password")],
)
async def test_wrong_password_gives_no_hint_whether_the_user_exists(
    gateway: httpx.AsyncClient, username: str, password: str
):
    response = await gateway.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert body["detail"] == "The username, password or organisation is not valid."


async def test_unsupported_grant_and_missing_parameters(gateway: httpx.AsyncClient):
    response = await gateway.post("/auth/token", data={"grant_type": "implicit"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    response = await gateway.post("/auth/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# --- rejection of bad tokens ------------------------------------------------------------------


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _assert_rejected(gateway: httpx.AsyncClient, token: str) -> None:
    response = await gateway.get("/identity/v1/people", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_valid_admin_token_is_accepted(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    response = await gateway.get("/identity/v1/people", headers=admin_headers)
    assert response.status_code == 200


async def test_a_tampered_token_is_rejected(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin", "auditor"]
    await _assert_rejected(gateway, f"{header}.{_b64(claims)}.{signature}")


async def test_alg_none_is_rejected(gateway: httpx.AsyncClient, admin_headers: dict[str, str]):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    claims = claims_of(token)
    header = {"alg": "none", "typ": "JWT", "kid": header_of(token)["kid"]}
    await _assert_rejected(gateway, f"{_b64(header)}.{_b64(claims)}.")


async def test_hs256_signed_with_the_public_key_is_rejected(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    jwks = (await gateway.get("/.well-known/jwks.json")).json()
    public_x = jwks["keys"][0]["x"].encode()
    header = {"alg": "HS256", "typ": "JWT", "kid": header_of(token)["kid"]}
    signing_input = f"{_b64(header)}.{_b64(claims_of(token))}"
    import hashlib
    import hmac

    signature = hmac.new(public_x, signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
    await _assert_rejected(gateway, forged)


async def _issuer(gateway_app: FastAPI) -> TokenIssuer:
    issuer: TokenIssuer = gateway_app.state.token_issuer
    return issuer


async def test_an_expired_token_is_rejected(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, admin_headers: dict[str, str]
):
    claims = claims_of(admin_headers["Authorization"].removeprefix("Bearer "))
    issuer = await _issuer(gateway_app)
    token = await issuer.sign(
        subject=str(claims["sub"]),
        kind=PrincipalKind.STAFF,
        ttl_seconds=-120,
        org_id=uuid.UUID(str(claims["org"])),
        roles=["admin"],
        scope="",
    )
    await _assert_rejected(gateway, token)


async def test_a_wrong_audience_is_rejected(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, admin_headers: dict[str, str]
):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    kid, private_key = await gateway_app.state.key_store.signing_key()
    claims = {**claims_of(token), "aud": "someone-else"}
    await _assert_rejected(
        gateway, jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})
    )


async def test_an_unknown_kid_is_rejected(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    claims = claims_of(admin_headers["Authorization"].removeprefix("Bearer "))
    claims["exp"] = int(time.time()) + 300
    stranger = Ed25519PrivateKey.generate()
    token = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": "not-our-key"})
    await _assert_rejected(gateway, token)


async def test_a_known_kid_with_a_foreign_key_is_rejected(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    stranger = Ed25519PrivateKey.generate()
    forged = jwt.encode(
        claims_of(token), stranger, algorithm="EdDSA", headers={"kid": header_of(token)["kid"]}
    )
    await _assert_rejected(gateway, forged)


async def test_a_reporter_token_is_refused_by_admin_endpoints(
    gateway: httpx.AsyncClient, gateway_app: FastAPI, admin_headers: dict[str, str]
):
    org = uuid.UUID(str(claims_of(admin_headers["Authorization"][7:])["org"]))
    token, expires_in = await (await _issuer(gateway_app)).issue_reporter_token(org, uuid.uuid4())
    claims = claims_of(token)
    assert expires_in == 900 and claims["typ"] == "reporter" and claims["report"]
    assert str(claims["sub"]).startswith("reporter:") and claims["roles"] == []
    response = await gateway.get("/identity/v1/people", headers=bearer(token))
    assert response.status_code == 403


# --- keys -------------------------------------------------------------------------------------


async def test_jwks_lists_the_signing_kid(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    kid = header_of(admin_headers["Authorization"].removeprefix("Bearer "))["kid"]
    response = await gateway.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    key = next(k for k in keys if k["kid"] == kid)
    assert key == {**key, "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA"}
    assert "d" not in key


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_kid(
    gateway: httpx.AsyncClient, gateway_app: FastAPI
):
    old = await password_token(gateway, "staff@demo.example")
    old_kid = header_of(str(old["access_token"]))["kid"]
    new_kid = await gateway_app.state.key_store.rotate()
    assert new_kid != old_kid

    admin = await password_token(gateway, "admin@demo.example")
    assert header_of(str(admin["access_token"]))["kid"] == new_kid
    kids = {k["kid"] for k in (await gateway.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    # A token signed before the rotation still verifies (staff → 403 for lack of role, not 401).
    response = await gateway.get("/identity/v1/people", headers=bearer(old["access_token"]))
    assert response.status_code == 403
    response = await gateway.get("/identity/v1/people", headers=bearer(admin["access_token"]))
    assert response.status_code == 200


def test_production_refuses_development_secrets():
    with pytest.raises(ValueError, match="UPSTANDER_KEK"):
        Settings(mode="production", service_secret="x" * 32)
    with pytest.raises(ValueError, match="UPSTANDER_SERVICE_SECRET"):
        Settings(mode="production", kek="prod:" + "A" * 43 + "=")


def test_production_refuses_a_password_hash_cost_under_the_rfc_9106_profile(
    production_hash_cost: None,
):
    secrets = {"kek": "prod:" + "A" * 43 + "=", "service_secret": "x" * 32}
    with pytest.raises(ValueError, match="UPSTANDER_PASSWORD_HASH_TIME_COST"):
        Settings(mode="production", password_hash_time_cost=1, **secrets)
    with pytest.raises(ValueError, match="UPSTANDER_PASSWORD_HASH_MEMORY_KIB"):
        Settings(mode="production", password_hash_memory_kib=8, **secrets)
    production = Settings(mode="production", operator_client_secret="o" * 32, **secrets)
    assert (production.password_hash_time_cost, production.password_hash_memory_kib) == (
        3,
        65536,
    )


def test_a_hash_carries_the_configured_cost_and_an_old_cost_still_verifies():
    from argon2 import PasswordHasher

    from upstander.gateway.auth import passwords

    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash("s3cret")
    passwords.configure(time_cost=1, memory_kib=8)
    assert "m=8,t=1" in passwords.hash_secret_sync("s3cret")
    matches, needs_rehash = passwords._verify(old, "s3cret")
    assert (matches, needs_rehash) == (True, True)
