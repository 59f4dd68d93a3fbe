"""Browser sign-in at the gateway: the authorization code flow with PKCE (RFC 7636, S256 only)
for public clients — registered redirect URIs matched exactly, `state` required, no implicit
flow, codes single-use, short-lived and bound to the client, the redirect URI and the
challenge — and the per-client switch of the password grant."""

from __future__ import annotations

import html
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from identity_support import DEMO_PASSWORD, bearer
from sqlalchemy import update

from upstander.gateway.auth.authorize import hash_code
from upstander.gateway.auth.pkce import challenge_of, valid_verifier, verify
from upstander.gateway.auth.store import AuthorizationCode
from upstander.gateway.bootstrap import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

AUTHORIZE = "/auth/authorize"
TOKEN = "/auth/token"
REDIRECT = "https://frontend.example/callback"
ADMIN = "admin@demo.example"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, challenge_of(verifier)


async def make_client(
    gateway: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    scopes: list[str],
    public: bool = True,
    redirect_uris: list[str] | None = None,
    allow_password_grant: bool = False,
) -> tuple[str, str, str]:
    """A registered client made a browser app: (client_id, secret, primary key)."""
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": f"Frontend {uuid.uuid4().hex[:6]}", "scopes": scopes},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    browser = await gateway.put(
        f"/identity/v1/clients/{body['id']}/browser",
        json={
            "public": public,
            "redirect_uris": redirect_uris if redirect_uris is not None else [REDIRECT],
            "allow_password_grant": allow_password_grant,
        },
        headers=headers,
    )
    assert browser.status_code == 200, browser.text
    return body["client_id"], body["client_secret"], body["id"]


@pytest.fixture(scope="module")
async def frontend(gateway: httpx.AsyncClient, admin_headers: dict[str, str]) -> str:
    client_id, _secret, _pk = await make_client(
        gateway, admin_headers, scopes=["people:read", "intake:write", "training:read"]
    )
    return client_id


def authorize_params(client_id: str, challenge: str, **overrides: Any) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "st-" + secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def hidden_fields(page: str) -> dict[str, str]:
    return {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(
    gateway: httpx.AsyncClient,
    client_id: str,
    challenge: str,
    *,
    email: str = ADMIN,
    password: str = DEMO_PASSWORD,
    **overrides: Any,
) -> httpx.Response:
    """The browser: open the form, post it back with the person's credentials."""
    params = authorize_params(client_id, challenge, **overrides)
    page = await gateway.get(AUTHORIZE, params=params, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    form = {**hidden_fields(page.text), "username": email, "password": password}
    return await gateway.post(AUTHORIZE, data=form)


async def exchange(
    gateway: httpx.AsyncClient,
    client_id: str,
    code: str,
    verifier: str,
    *,
    redirect_uri: str = REDIRECT,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": client_id,
    }
    return (
        await gateway.post(TOKEN, data=form, auth=auth)
        if auth
        else await gateway.post(TOKEN, data=form)
    )


# -- PKCE itself --------------------------------------------------------------------------------


def test_s256_matches_the_rfc_7636_example():
    # RFC 7636 Appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not verify(verifier[:-1] + "A", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not valid_verifier("short")
    assert not verify("a" * 42, challenge_of("a" * 42))  # too short to be a verifier


# -- the whole flow -----------------------------------------------------------------------------


async def test_a_public_client_signs_a_person_in_and_the_token_works(
    gateway: httpx.AsyncClient, frontend: str
):
    verifier, challenge = pkce_pair()
    answer = await sign_in(gateway, frontend, challenge, state="xyz 123/?&")

    query = redirect_query(answer)
    assert answer.status_code == 303
    assert query["state"] == "xyz 123/?&"  # returned unchanged
    assert query["iss"] == "upstander"  # RFC 9207
    assert "error" not in query
    tokens = await exchange(gateway, frontend, query["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert tokens.headers["cache-control"] == "no-store"
    # The admin holds everything; the sign-in carries only what the client holds too.
    assert set(body["scope"].split()) == {"people:read", "intake:write", "training:read"}
    assert body["refresh_token"]

    people = await gateway.get("/identity/v1/people", headers=bearer(body["access_token"]))
    assert people.status_code == 200, people.text
    # Narrowed to the client's scopes: what the admin could do elsewhere is refused here.
    clients = await gateway.get("/identity/v1/clients", headers=bearer(body["access_token"]))
    assert clients.status_code == 403

    refreshed = await gateway.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert set(refreshed.json()["scope"].split()) == set(body["scope"].split())


async def test_a_code_is_single_use_and_a_replay_ends_the_sign_in(
    gateway: httpx.AsyncClient, frontend: str
):
    verifier, challenge = pkce_pair()
    code = redirect_query(await sign_in(gateway, frontend, challenge))["code"]
    first = await exchange(gateway, frontend, code, verifier)
    assert first.status_code == 200, first.text

    again = await exchange(gateway, frontend, code, verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    # The sign-in the code started is over: its refresh token no longer works.
    refresh = await gateway.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


async def test_a_code_is_bound_to_its_verifier_redirect_uri_and_client(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], frontend: str
):
    other_client, _secret, _pk = await make_client(
        gateway, admin_headers, scopes=["people:read"], redirect_uris=[REDIRECT]
    )
    verifier, challenge = pkce_pair()
    code = redirect_query(await sign_in(gateway, frontend, challenge))["code"]

    wrong_verifier = await exchange(gateway, frontend, code, pkce_pair()[0])
    wrong_redirect = await exchange(
        gateway, frontend, code, verifier, redirect_uri=REDIRECT + "/other"
    )
    wrong_client = await exchange(gateway, other_client, code, verifier)
    no_verifier = await gateway.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": frontend,
        },
    )
    right = await exchange(gateway, frontend, code, verifier)

    for refused in (wrong_verifier, wrong_redirect, wrong_client):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_grant"
    assert no_verifier.status_code == 400
    assert no_verifier.json()["error"] == "invalid_request"
    assert right.status_code == 200, right.text


async def test_an_expired_code_is_refused(
    gateway_app: FastAPI, gateway: httpx.AsyncClient, frontend: str
):
    verifier, challenge = pkce_pair()
    code = redirect_query(await sign_in(gateway, frontend, challenge))["code"]
    async with gateway_app.state.sessionmaker() as session:
        await session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == hash_code(code))
            .values(expires_at=gateway_app.state.clock.now() - timedelta(seconds=1))
        )
        await session.commit()

    expired = await exchange(gateway, frontend, code, verifier)

    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_grant"
    assert gateway_app.state.settings.authorization_code_ttl_seconds <= 60


# -- what the authorization endpoint refuses ----------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://frontend.example/callback/",  # a trailing slash
        "https://frontend.example/callback?x=1",  # extra query
        "https://frontend.example/callbackx",  # a prefix match
        "https://FRONTEND.example/callback",  # a different spelling
        "https://evil.example/callback",
        None,
    ],
)
async def test_an_unregistered_redirect_uri_is_shown_never_redirected(
    gateway: httpx.AsyncClient, frontend: str, redirect_uri: str | None
):
    params = authorize_params(frontend, pkce_pair()[1], redirect_uri=redirect_uri)
    params = {k: v for k, v in params.items() if v is not None}
    if redirect_uri is None:
        params.pop("redirect_uri", None)

    response = await gateway.get(AUTHORIZE, params=params)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_client_is_shown_never_redirected(gateway: httpx.AsyncClient):
    params = authorize_params("cl_nobody", pkce_pair()[1])
    response = await gateway.get(AUTHORIZE, params=params, headers={"Accept": "text/html"})

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"state": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),  # no implicit flow
        ({"response_type": "code token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"scope": "cases:export"}, "invalid_scope"),  # beyond the client's
        ({"scope": "made:up"}, "invalid_scope"),
    ],
)
async def test_other_errors_go_back_to_the_app(
    gateway: httpx.AsyncClient, frontend: str, overrides: dict[str, Any], error: str
):
    params = authorize_params(frontend, pkce_pair()[1], **overrides)
    params = {k: v for k, v in params.items() if v is not None}
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)

    response = await gateway.get(AUTHORIZE, params=params)

    query = redirect_query(response)
    assert query["error"] == error
    assert query["error_description"]
    assert "code" not in query
    assert query.get("state") == params.get("state")


async def test_a_repeated_parameter_is_an_invalid_request(
    gateway: httpx.AsyncClient, frontend: str
):
    params = [*authorize_params(frontend, pkce_pair()[1]).items(), ("state", "second")]
    response = await gateway.get(AUTHORIZE + "?" + urlencode(params))

    assert redirect_query(response)["error"] == "invalid_request"


async def test_a_wrong_password_shows_the_form_again_without_a_code(
    gateway: httpx.AsyncClient, frontend: str
):
    answer = await sign_in(gateway, frontend, pkce_pair()[1], password="not-the-password")

    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "The email or password is not valid." in answer.text
    assert 'type="password"' in answer.text


async def test_a_person_of_another_organisation_cannot_sign_in_through_this_client(
    gateway: httpx.AsyncClient, frontend: str, org_b: Any
):
    answer = await sign_in(
        gateway, frontend, pkce_pair()[1], email=org_b.admin_email, password=org_b.password
    )

    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_the_sign_in_page_cannot_be_framed(gateway: httpx.AsyncClient, frontend: str):
    page = await gateway.get(AUTHORIZE, params=authorize_params(frontend, pkce_pair()[1]))

    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


# -- clients ------------------------------------------------------------------------------------


async def test_a_public_clients_secret_authenticates_nothing(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    client_id, secret, _pk = await make_client(gateway, admin_headers, scopes=["people:read"])

    response = await gateway.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_confidential_client_must_authenticate_to_exchange_its_code(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    client_id, secret, _pk = await make_client(
        gateway, admin_headers, scopes=["people:read"], public=False
    )
    verifier, challenge = pkce_pair()
    code = redirect_query(await sign_in(gateway, client_id, challenge))["code"]

    without = await exchange(gateway, client_id, code, verifier)
    with_secret = await exchange(gateway, client_id, code, verifier, auth=(client_id, secret))

    assert without.status_code == 401
    assert without.json()["error"] == "invalid_client"
    assert with_secret.status_code == 200, with_secret.text
    assert with_secret.json()["scope"] == "people:read"


async def test_redirect_uris_must_be_safe(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    created = await gateway.post(
        "/identity/v1/clients", json={"name": "Unsafe", "scopes": []}, headers=admin_headers
    )
    pk = created.json()["id"]
    for uri in (
        "http://frontend.example/cb",  # plain http off loopback
        "https://frontend.example/cb#fragment",
        "/relative",
        "javascript:alert(1)",
    ):
        refused = await gateway.put(
            f"/identity/v1/clients/{pk}/browser",
            json={"redirect_uris": [uri]},
            headers=admin_headers,
        )
        assert refused.status_code == 422, uri
    fine = await gateway.put(
        f"/identity/v1/clients/{pk}/browser",
        json={"redirect_uris": ["http://127.0.0.1:8765/cb", "com.example.app:/oauth"]},
        headers=admin_headers,
    )
    assert fine.status_code == 200, fine.text


async def test_another_organisations_client_settings_are_404(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b: Any
):
    _client_id, _secret, pk = await make_client(gateway, admin_headers, scopes=["people:read"])

    read = await gateway.get(f"/identity/v1/clients/{pk}/browser", headers=org_b.headers)
    write = await gateway.put(
        f"/identity/v1/clients/{pk}/browser",
        json={"redirect_uris": ["https://evil.example/cb"]},
        headers=org_b.headers,
    )
    own = await gateway.get(
        f"/identity/v1/clients/{org_b.client_pk}/browser", headers=org_b.headers
    )

    assert read.status_code == 404
    assert write.status_code == 404
    assert own.status_code == 200, own.text
    assert own.json()["redirect_uris"] == []


# -- the password grant's switch ----------------------------------------------------------------


async def test_the_password_grant_is_per_client(
    gateway_app: FastAPI,
    gateway: httpx.AsyncClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
):
    form = {"grant_type": "password", "username": ADMIN, "password": DEMO_PASSWORD}
    first_party, _s, _pk = await make_client(
        gateway, admin_headers, scopes=["people:read"], allow_password_grant=True
    )
    frontend, _s, _pk = await make_client(gateway, admin_headers, scopes=["people:read"])

    demo = await gateway.post(TOKEN, data=form, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    allowed = await gateway.post(TOKEN, data={**form, "client_id": first_party})
    refused = await gateway.post(TOKEN, data={**form, "client_id": frontend})
    # Without a client: first-party tools in dev mode only.
    monkeypatch.setattr(gateway_app.state.settings, "password_grant_without_client", False)
    closed = await gateway.post(TOKEN, data=form)
    still_demo = await gateway.post(TOKEN, data=form, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))

    assert demo.status_code == 200, demo.text
    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 400
    assert refused.json()["error"] == "unauthorized_client"
    assert closed.status_code == 400
    assert closed.json()["error"] == "unauthorized_client"
    assert still_demo.status_code == 200, still_demo.text


async def test_a_client_allowing_the_password_grant_signs_in_its_own_organisation_only(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b: Any
):
    first_party, _s, _pk = await make_client(
        gateway, admin_headers, scopes=["people:read"], allow_password_grant=True
    )
    response = await gateway.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": org_b.admin_email,
            "password": org_b.password,
            "client_id": first_party,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_the_metadata_advertises_the_code_flow(gateway: httpx.AsyncClient):
    document = (await gateway.get("/.well-known/oauth-authorization-server")).json()

    assert document["authorization_endpoint"].endswith(AUTHORIZE)
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert "authorization_code" in document["grant_types_supported"]
    assert "implicit" not in document["grant_types_supported"]
    assert "none" in document["token_endpoint_auth_methods_supported"]


async def test_control_characters_are_refused_never_crash(
    gateway: httpx.AsyncClient, frontend: str, admin_headers: dict[str, str]
):
    challenge = pkce_pair()[1]
    bad_client = await gateway.get(AUTHORIZE, params=authorize_params("cl_\x00x", challenge))
    bad_state = await gateway.get(
        AUTHORIZE, params=authorize_params(frontend, challenge, state="a\x00")
    )
    bad_form = await gateway.post(
        AUTHORIZE,
        data={
            **authorize_params(frontend, challenge),
            "username": "a\x00@b.example",
            "password": "x",
        },
    )

    assert bad_client.status_code == 400
    assert redirect_query(bad_state)["error"] == "invalid_request"
    assert bad_form.status_code == 400
    assert "location" not in bad_form.headers
