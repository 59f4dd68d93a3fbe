"""Single sign-on against a real, local OpenID Connect provider (`oidc-provider-mock`, a Flask
app on a thread and a free port): an organisation configures its provider through the API
(its client secret sealed), a staff member signs in there from a browser (httpx following
redirects: app → gateway → provider → gateway callback → app) and the app gets Upstander
tokens that work. The ID token is checked by issuer, audience, nonce, expiry and signature,
with the provider's keys fetched again when it rotates them; only a verified email of the
organisation's own people signs in, and nobody is created unless the organisation says so."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI
from helpers import python_output
from identity_support import bearer
from sqlalchemy import select, text

from upstander.gateway.auth.pkce import challenge_of
from upstander.gateway.auth.store import SsoProvider

oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
flask = pytest.importorskip("flask")
werkzeug_serving = pytest.importorskip("werkzeug.serving")

from joserfc import jwt as jose_jwt  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

GATEWAY = "http://127.0.0.1:8000"
FRONTEND = "https://frontend.example"
REDIRECT = FRONTEND + "/callback"
PROVIDER_CLIENT_ID = "upstander-demo"
PROVIDER_SECRET = "provider-client-secret-" + "x" * 12
SSO = "/identity/v1/orgs/current/sso"


def _b64json(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@dataclass
class Provider:
    """The local provider, and the knobs a test turns: `tamper` rewrites the ID token's
    claims (and header) the token endpoint returns, re-signed with `signing_key` (the
    provider's own key unless a test brings a rogue one)."""

    issuer: str = ""
    storage: Any = None
    tamper: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    signing_key: Any = None
    http: httpx.Client = field(default_factory=httpx.Client)

    def user(self, sub: str, **claims: Any) -> str:
        response = self.http.put(f"{self.issuer}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text
        return sub

    def own_key(self) -> RSAKey:
        return RSAKey.import_key(self.storage.jwk.as_dict(is_private=True))

    def rotate(self) -> None:
        from authlib import jose  # the provider's own key type

        self.storage.jwk = jose.RSAKey.generate_key(is_private=True)


def _tampering(provider: Provider, inner: Any) -> Any:
    """WSGI middleware over the provider: rewrites the ID token of token responses."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/oauth2/token" or provider.tamper is None:
            return inner(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(inner(environ, capture))
        document = json.loads(body)
        if "id_token" in document:
            head, payload, _sig = document["id_token"].split(".")
            header, claims = _b64json(head), _b64json(payload)
            provider.tamper(claims, header)
            if header.get("alg") == "none":  # an unsigned token, as an attacker sends one
                document["id_token"] = (
                    ".".join(
                        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                        for part in (header, claims)
                    )
                    + "."
                )
            else:
                key = provider.signing_key or provider.own_key()
                document["id_token"] = jose_jwt.encode(header, claims, key)
        body = json.dumps(document).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    state = Provider()
    app = oidc_provider_mock.app(require_nonce=True)

    @app.before_request
    def _grab_storage() -> None:
        state.storage = flask.g.oidc_provider_mock_storage

    app.wsgi_app = _tampering(state, app.wsgi_app)  # type: ignore[method-assign]
    server = werkzeug_serving.make_server("localhost", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.issuer = f"http://localhost:{server.server_port}"
    state.http.get(state.issuer + "/.well-known/openid-configuration").raise_for_status()
    try:
        yield state
    finally:
        state.http.close()
        server.shutdown()
        thread.join(5)


@pytest.fixture(autouse=True)
def _no_tampering(provider: Provider) -> Iterator[None]:
    yield
    provider.tamper = None
    provider.signing_key = None


def _frontend(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="the app's callback page")


def browser_for(gateway_app: FastAPI, provider: Provider) -> httpx.AsyncClient:
    """A browser: the gateway in process, the provider over its port, the app's page faked."""
    return httpx.AsyncClient(
        mounts={
            GATEWAY: httpx.ASGITransport(gateway_app, raise_app_exceptions=False),
            provider.issuer: httpx.AsyncHTTPTransport(),
            FRONTEND: httpx.MockTransport(_frontend),
        },
        base_url=GATEWAY,
        timeout=20,
    )


@pytest.fixture
async def browser(gateway_app: FastAPI, provider: Provider) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(gateway_app, provider) as client:
        yield client


@pytest.fixture(scope="module")
async def frontend(gateway: httpx.AsyncClient, admin_headers: dict[str, str]) -> str:
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Campaign app", "scopes": ["people:read", "intake:write"]},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    browser_settings = await gateway.put(
        f"/identity/v1/clients/{created.json()['id']}/browser",
        json={"public": True, "redirect_uris": [REDIRECT]},
        headers=admin_headers,
    )
    assert browser_settings.status_code == 200, browser_settings.text
    return str(created.json()["client_id"])


async def configure(
    gateway: httpx.AsyncClient, headers: dict[str, str], provider: Provider, **changes: Any
) -> httpx.Response:
    body = {
        "issuer": provider.issuer,
        "client_id": PROVIDER_CLIENT_ID,
        "client_secret": PROVIDER_SECRET,
        "allowed_domains": ["demo.example", "beta.example", "newcomers.example"],
        "create_people": False,
        **changes,
    }
    response = await gateway.put(SSO, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response


@pytest.fixture(scope="module")
async def sso(gateway: httpx.AsyncClient, admin_headers: dict[str, str], provider: Provider):
    await configure(gateway, admin_headers, provider)


@dataclass
class SignIn:
    query: dict[str, str]
    verifier: str
    state: str
    callback: str = ""


async def sign_in(
    browser: httpx.AsyncClient,
    client_id: str,
    sub: str,
    *,
    tweak: Callable[[dict[str, str]], None] | None = None,
) -> SignIn:
    """The whole browser round trip; `tweak` edits the provider request's parameters (as a
    meddling browser could)."""
    verifier = secrets.token_urlsafe(48)
    state = "app-" + secrets.token_urlsafe(6)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": state,
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
        "login": "sso",
    }
    start = await browser.get("/auth/authorize", params=params)
    assert start.status_code == 302, start.text
    to_provider = urlsplit(start.headers["location"])
    query = {k: v[0] for k, v in parse_qs(to_provider.query).items()}
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    if tweak:
        tweak(query)
    provider_url = urlunsplit(to_provider._replace(query=urlencode(query)))
    page = await browser.get(provider_url)
    assert page.status_code == 200, page.text  # the provider's sign-in page
    # The person picks who they are at the provider; redirects are followed from there on.
    done = await browser.post(provider_url, data={"sub": sub}, follow_redirects=True)
    assert done.status_code == 200, done.text
    assert str(done.url).startswith(REDIRECT), str(done.url)
    callback = next((str(r.url) for r in done.history if r.url.path == "/auth/sso/callback"), "")
    answer = {k: v[0] for k, v in parse_qs(done.url.query.decode()).items()}
    return SignIn(answer, verifier, state, callback)


async def tokens_for(gateway: httpx.AsyncClient, client_id: str, signed: SignIn) -> dict[str, Any]:
    assert "error" not in signed.query, signed.query
    assert signed.query["state"] == signed.state
    response = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": signed.query["code"],
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": signed.verifier,
        },
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def refused(signed: SignIn, error: str = "access_denied") -> str:
    assert "code" not in signed.query, signed.query
    assert signed.query["error"] == error, signed.query
    assert signed.query["state"] == signed.state
    return signed.query["error_description"]


# -- configuration ------------------------------------------------------------------------------


async def test_the_provider_is_configured_through_the_api_and_its_secret_is_sealed(
    gateway_app: FastAPI,
    gateway: httpx.AsyncClient,
    admin_headers: dict[str, str],
    provider: Provider,
    sso: None,
    org_b: Any,
):
    read = await gateway.get(SSO, headers=admin_headers)

    assert read.status_code == 200, read.text
    body = read.json()
    assert body["issuer"] == provider.issuer
    assert body["has_client_secret"] is True
    assert "client_secret" not in body and PROVIDER_SECRET not in read.text
    assert body["create_people"] is False
    assert body["redirect_uri"] == GATEWAY + "/auth/sso/callback"
    assert read.headers["etag"] == f'"{body["version"]}"'
    async with gateway_app.state.sessionmaker() as session:
        raw = await session.scalar(
            text("SELECT client_secret FROM sso_providers WHERE client_id = :c"),
            {"c": PROVIDER_CLIENT_ID},
        )
        provider_row = await session.scalar(
            select(SsoProvider).where(SsoProvider.client_id == PROVIDER_CLIENT_ID)
        )
    assert raw is not None and PROVIDER_SECRET.encode() not in bytes(raw)
    assert provider_row is not None and provider_row.client_secret == PROVIDER_SECRET
    # Another organisation sees none of it.
    other = await gateway.get(SSO, headers=org_b.headers)
    assert other.status_code == 404


async def test_a_provider_must_be_https_and_the_secret_is_needed_the_first_time(
    gateway: httpx.AsyncClient, org_b: Any, provider: Provider
):
    plain = await gateway.put(
        SSO,
        json={"issuer": "http://idp.example", "client_id": "x", "client_secret": "y"},
        headers=org_b.headers,
    )
    no_secret = await gateway.put(
        SSO, json={"issuer": provider.issuer, "client_id": "x"}, headers=org_b.headers
    )
    control = await gateway.put(
        SSO,
        json={"issuer": provider.issuer, "client_id": "x\u0000", "client_secret": "y"},
        headers=org_b.headers,
    )

    assert plain.status_code == 422
    assert no_secret.status_code == 422
    assert control.status_code == 422
    assert (await gateway.get(SSO, headers=org_b.headers)).status_code == 404


async def test_a_stale_etag_is_refused(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], provider: Provider, sso: None
):
    response = await gateway.put(
        SSO,
        json={"issuer": provider.issuer, "client_id": PROVIDER_CLIENT_ID},
        headers={**admin_headers, "If-Match": '"999"'},
    )
    assert response.status_code == 412


# -- the flow -----------------------------------------------------------------------------------


async def test_a_staff_member_signs_in_with_sso_and_the_token_works(
    gateway: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    frontend: str,
    sso: None,
):
    sub = provider.user("admin-sub", email="Admin@Demo.example", email_verified=True)

    signed = await sign_in(browser, frontend, sub)

    assert signed.query["iss"] == "upstander"
    body = await tokens_for(gateway, frontend, signed)
    claims = _b64json(body["access_token"].split(".")[1])
    assert claims["typ"] == "staff"
    assert set(body["scope"].split()) == {"people:read", "intake:write"}
    people = await gateway.get("/identity/v1/people", headers=bearer(body["access_token"]))
    assert people.status_code == 200, people.text
    assert claims["sub"] in {p["id"] for p in people.json()["items"]}
    me = [p for p in people.json()["items"] if p["id"] == claims["sub"]]
    assert me[0]["email"] == "admin@demo.example"


async def test_the_callback_is_single_use_and_bound_to_the_browser(
    gateway_app: FastAPI,
    browser: httpx.AsyncClient,
    provider: Provider,
    frontend: str,
    sso: None,
):
    sub = provider.user("replay-sub", email="admin@demo.example", email_verified=True)
    signed = await sign_in(browser, frontend, sub)
    assert "code" in signed.query and signed.callback

    replayed = await browser.get(signed.callback)
    async with browser_for(gateway_app, provider) as another_browser:
        stolen = await another_browser.get(signed.callback)

    for response in (replayed, stolen):
        assert response.status_code == 400
        assert "location" not in response.headers


async def test_a_nonce_other_than_the_one_sent_is_refused(
    browser: httpx.AsyncClient, provider: Provider, frontend: str, sso: None
):
    sub = provider.user("nonce-sub", email="admin@demo.example", email_verified=True)

    def swap_nonce(query: dict[str, str]) -> None:
        query["nonce"] = "attacker-nonce"

    refused(await sign_in(browser, frontend, sub, tweak=swap_nonce))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c, h: c.update(iss="https://other-issuer.example"), id="issuer"),
        pytest.param(lambda c, h: c.update(aud=["another-application"]), id="audience"),
        pytest.param(lambda c, h: c.update(exp=c["iat"] - 3600), id="expired"),
        pytest.param(lambda c, h: c.pop("nonce"), id="no-nonce"),
        pytest.param(lambda c, h: c.update(aud=[PROVIDER_CLIENT_ID, "x"]), id="azp-missing"),
        pytest.param(lambda c, h: h.update(alg="none"), id="alg-none"),
    ],
)
async def test_an_id_token_with_wrong_claims_is_refused(
    browser: httpx.AsyncClient,
    provider: Provider,
    frontend: str,
    sso: None,
    tamper: Callable[[dict[str, Any], dict[str, Any]], None],
):
    sub = provider.user("tamper-sub", email="admin@demo.example", email_verified=True)
    provider.tamper = tamper

    refused(await sign_in(browser, frontend, sub))


async def test_an_id_token_signed_by_an_unknown_key_is_refused(
    browser: httpx.AsyncClient, provider: Provider, frontend: str, sso: None
):
    sub = provider.user("rogue-sub", email="admin@demo.example", email_verified=True)
    provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "rogue"})
    provider.tamper = lambda claims, header: header.update(kid="rogue")

    refused(await sign_in(browser, frontend, sub))


async def test_keys_are_fetched_again_when_the_provider_rotates_them(
    gateway_app: FastAPI,
    gateway: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    frontend: str,
    sso: None,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(gateway_app.state.sso_directory, "refetch_seconds", 0)
    sub = provider.user("rotate-sub", email="admin@demo.example", email_verified=True)
    await tokens_for(gateway, frontend, await sign_in(browser, frontend, sub))  # keys cached

    provider.rotate()
    after = await sign_in(browser, frontend, sub)

    await tokens_for(gateway, frontend, after)


# -- who may sign in ----------------------------------------------------------------------------


async def test_an_unverified_email_is_refused(
    browser: httpx.AsyncClient, provider: Provider, frontend: str, sso: None
):
    sub = provider.user("unverified-sub", email="admin@demo.example", email_verified=False)
    assert "verified" in refused(await sign_in(browser, frontend, sub))


async def test_an_unknown_email_is_refused_and_nobody_is_created(
    gateway: httpx.AsyncClient,
    admin_headers: dict[str, str],
    browser: httpx.AsyncClient,
    provider: Provider,
    frontend: str,
    sso: None,
):
    email = f"new-{uuid.uuid4().hex[:6]}@demo.example"
    sub = provider.user("unknown-sub", email=email, email_verified=True)

    refused(await sign_in(browser, frontend, sub))

    found = await gateway.get("/identity/v1/people", params={"email": email}, headers=admin_headers)
    assert found.status_code == 200 and found.json()["items"] == []


async def test_an_email_of_another_organisation_is_refused(
    browser: httpx.AsyncClient, provider: Provider, frontend: str, sso: None, org_b: Any
):
    sub = provider.user("beta-sub", email=org_b.admin_email, email_verified=True)
    refused(await sign_in(browser, frontend, sub))


async def test_an_email_outside_the_allowed_domains_is_refused(
    browser: httpx.AsyncClient, provider: Provider, frontend: str, sso: None
):
    sub = provider.user("outsider-sub", email="someone@outsider.example", email_verified=True)
    assert "domain" in refused(await sign_in(browser, frontend, sub))


async def test_an_organisation_may_create_people_at_their_first_sign_in(
    gateway: httpx.AsyncClient,
    admin_headers: dict[str, str],
    browser: httpx.AsyncClient,
    provider: Provider,
    frontend: str,
    sso: None,
):
    email = f"first-{uuid.uuid4().hex[:6]}@newcomers.example"
    sub = provider.user("newcomer-sub", email=email, email_verified=True, name="New Comer")
    await configure(gateway, admin_headers, provider, create_people=True, client_secret=None)
    try:
        signed = await sign_in(browser, frontend, sub)
    finally:
        await configure(gateway, admin_headers, provider, create_people=False, client_secret=None)

    body = await tokens_for(gateway, frontend, signed)
    assert body["scope"] == "intake:write"  # a staff member holds what everyone holds
    found = await gateway.get("/identity/v1/people", params={"email": email}, headers=admin_headers)
    (person,) = found.json()["items"]
    assert person["roles"] == ["staff"] and person["name"] == "New Comer"
    assert person["has_password"] is False


async def test_the_sign_in_form_offers_sso_when_the_organisation_has_it(
    gateway: httpx.AsyncClient, frontend: str, sso: None
):
    verifier = secrets.token_urlsafe(48)
    page = await gateway.get(
        "/auth/authorize",
        params={
            "response_type": "code",
            "client_id": frontend,
            "redirect_uri": REDIRECT,
            "state": "s",
            "code_challenge": challenge_of(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 200
    assert "login=sso" in page.text


def test_a_gateway_without_sso_sign_ins_never_loads_authlib() -> None:
    """Authlib and joserfc are imported at the first SSO sign-in, not with the gateway."""
    script = (
        "import sys\n"
        "from upstander.gateway.app import create_app\n"
        "from upstander.gateway.settings import Settings\n"
        "create_app(Settings())\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'authlib', 'joserfc'}))\n"
    )
    assert python_output(script)[-1] == "[]"
