"""The kit's token checks: the time window against the app's clock (`exp`, `nbf`, `iat`, all
numbers) and the shape of every claim a service reads. Anything off is a 401 problem with
`WWW-Authenticate`, never a 500, in every service."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI
from jwt.algorithms import OKPAlgorithm

from upstander.kit.app import ServiceSpec, create_service_app, make_router
from upstander.kit.auth import (
    LEEWAY_SECONDS,
    Principal,
    PrincipalKind,
    TokenVerifier,
    current_principal,
    decode_token,
)
from upstander.kit.clock import FrozenClock
from upstander.kit.errors import Unauthorized
from upstander.kit.settings import KitSettings

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AUDIENCE = ISSUER = "upstander"
JWKS_URL = "http://127.0.0.1:8000/.well-known/jwks.json"
KID = "kit-test"
KEY = Ed25519PrivateKey.generate()
ABSENT = object()


class FakeKeys:
    """A key source with one key, as the JWKS cache would serve it."""

    async def key(self, kid: str) -> Any:
        if kid != KID:
            raise Unauthorized("The token was signed with an unknown key.")
        return KEY.public_key()


def claims(**changes: Any) -> dict[str, Any]:
    """A valid staff token's claims at NOW; a change to `ABSENT` drops the claim."""
    at = int(NOW.timestamp())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "org": str(uuid.uuid4()),
        "typ": "staff",
        "roles": ["admin"],
        "scope": "",
        "iat": at,
        "exp": at + 300,
        "jti": uuid.uuid4().hex,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ABSENT}


def sign(payload: dict[str, Any], key: Ed25519PrivateKey = KEY) -> str:
    return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": KID})


def sign_raw(payload: str) -> str:
    """Sign a payload exactly as written (for values `json.dumps` would not produce)."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": KID}
    signing_input = (
        jwt.utils.base64url_encode(json.dumps(header).encode())
        + b"."
        + jwt.utils.base64url_encode(payload.encode())
    )
    signature = KEY.sign(signing_input)
    return (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()


def verifier(at: datetime = NOW) -> TokenVerifier:
    return TokenVerifier(FakeKeys(), audience=AUDIENCE, issuer=ISSUER, clock=FrozenClock(at))


async def refused(token: str, at: datetime = NOW) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        await verifier(at).verify(token)
    error = caught.value
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith("Bearer ")
    return error


# ----------------------------------------------------------------------------- the window

EPOCH = int(NOW.timestamp())


async def test_a_well_formed_staff_token_is_accepted() -> None:
    person, org = uuid.uuid4(), uuid.uuid4()
    principal = await verifier().verify(
        sign(claims(sub=str(person), org=str(org), roles=["admin", "trainer"], scope="a b"))
    )
    assert principal.kind == PrincipalKind.STAFF
    assert (principal.person_id, principal.org_id) == (person, org)
    assert principal.roles == {"admin", "trainer"}
    assert principal.scopes == {"a", "b"}


async def test_a_token_whose_nbf_is_in_the_future_is_refused() -> None:
    # The old check took min(iat, nbf): an issued-now token with a later nbf slipped through.
    await refused(sign(claims(nbf=EPOCH + 600)))


async def test_nbf_within_the_leeway_is_accepted_and_past_it_is_refused() -> None:
    await verifier().verify(sign(claims(nbf=EPOCH + LEEWAY_SECONDS - 1)))
    await refused(sign(claims(nbf=EPOCH + LEEWAY_SECONDS + 1)))


async def test_a_token_issued_in_the_future_is_refused() -> None:
    await refused(sign(claims(iat=EPOCH + 3600, exp=EPOCH + 3900)))
    await refused(sign(claims(iat=EPOCH + LEEWAY_SECONDS + 1, exp=EPOCH + 900)))


async def test_iat_within_the_leeway_is_accepted() -> None:
    # The gateway's clock may run a little ahead of the service's.
    await verifier().verify(sign(claims(iat=EPOCH + LEEWAY_SECONDS - 1)))


async def test_an_expired_token_is_refused_past_the_leeway() -> None:
    token = sign(claims(iat=EPOCH - 600, exp=EPOCH - LEEWAY_SECONDS - 1))
    await refused(token)
    await verifier().verify(sign(claims(iat=EPOCH - 600, exp=EPOCH - LEEWAY_SECONDS + 1)))


async def test_the_window_is_checked_against_the_verifiers_clock_not_the_real_time() -> None:
    # Issued in 2026 and valid five minutes: fine at the clock's NOW, refused a day later,
    # and refused an hour before it was issued.
    token = sign(claims())
    await verifier(NOW).verify(token)
    await refused(token, at=NOW + timedelta(days=1))
    await refused(token, at=NOW - timedelta(hours=1))


async def test_decode_token_checks_the_window_against_the_given_now() -> None:
    token = sign(claims(nbf=EPOCH + 600, exp=EPOCH + 3600))
    with pytest.raises(Unauthorized):
        decode_token(token, KEY.public_key(), audience=AUDIENCE, issuer=ISSUER, now=NOW)
    decoded = decode_token(
        token,
        KEY.public_key(),
        audience=AUDIENCE,
        issuer=ISSUER,
        now=NOW + timedelta(minutes=10),
    )
    assert decoded["nbf"] == EPOCH + 600


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": str(EPOCH + 300)},
        {"exp": "9999999999"},
        {"iat": str(EPOCH)},
        {"nbf": str(EPOCH)},
        {"nbf": None},
        {"exp": True},
        {"iat": [EPOCH]},
        {"exp": {"at": EPOCH + 300}},
        {"exp": 10**400},
        {"exp": EPOCH - 1, "iat": EPOCH},  # expires before it was issued (within the leeway)
        {"exp": ABSENT},
        {"iat": ABSENT},
    ],
    ids=[
        "exp-string",
        "exp-far-string",
        "iat-string",
        "nbf-string",
        "nbf-null",
        "exp-boolean",
        "iat-list",
        "exp-object",
        "exp-huge",
        "exp-before-iat",
        "exp-missing",
        "iat-missing",
    ],
)
async def test_a_time_claim_that_is_not_a_sane_number_is_refused(changes: dict[str, Any]) -> None:
    await refused(sign(claims(**changes)))


async def test_a_non_finite_expiry_is_refused() -> None:
    payload = json.dumps(claims())
    for value in ("Infinity", "NaN"):
        token = sign_raw(payload.replace(f'"exp": {EPOCH + 300}', f'"exp": {value}'))
        await refused(token)


# ----------------------------------------------------------------------------- the claims


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "not-a-uuid"},
        {"sub": "svc-intake"},
        {"sub": ""},
        {"sub": "x" * 500},
        {"org": "acme"},
        {"org": 42},
        {"org": [str(uuid.uuid4())]},
        {"roles": "admin"},
        {"roles": [1, 2]},
        {"roles": {"admin": True}},
        {"roles": ["admin", None]},
        {"roles": ["r"] * 51},
        {"scope": ["cases:read"]},
        {"scope": 7},
        {"typ": "superuser"},
        {"typ": ["staff"]},
        {"jti": 12345},
        {"report": "not-a-uuid"},
    ],
    ids=lambda changes: "-".join(f"{k}={str(v)[:12]}" for k, v in changes.items()),
)
async def test_a_malformed_claim_is_refused(changes: dict[str, Any]) -> None:
    await refused(sign(claims(**changes)))


async def test_other_kinds_keep_their_non_uuid_subjects() -> None:
    service = await verifier().verify(
        sign(claims(typ="service", sub="svc-intake", org=ABSENT, roles=[], scope="events:publish"))
    )
    client = await verifier().verify(sign(claims(typ="client", sub="hr-sync-3f2a", roles=[])))
    report = uuid.uuid4()
    reporter = await verifier().verify(
        sign(claims(typ="reporter", sub=f"reporter:{report}", roles=[], report=str(report)))
    )
    assert (service.kind, service.subject, service.org_id) == (
        PrincipalKind.SERVICE,
        "svc-intake",
        None,
    )
    assert service.person_id is None and client.person_id is None
    assert (client.kind, client.subject) == (PrincipalKind.CLIENT, "hr-sync-3f2a")
    assert (reporter.kind, reporter.report_id) == (PrincipalKind.REPORTER, report)


async def test_null_org_roles_and_scope_read_as_none_and_empty() -> None:
    principal = await verifier().verify(sign(claims(org=None, roles=None, scope=None)))
    assert principal.org_id is None
    assert principal.roles == frozenset() and principal.scopes == frozenset()


async def test_another_key_an_unknown_kid_or_another_algorithm_is_refused() -> None:
    await refused(sign(claims(), key=Ed25519PrivateKey.generate()))
    await refused(jwt.encode(claims(), KEY, algorithm="EdDSA", headers={"kid": "other"}))
    await refused(jwt.encode(claims(), "secret" * 8, algorithm="HS256", headers={"kid": KID}))
    await refused("not.a.token")


# ----------------------------------------------------------------------------- over HTTP


def _jwks_transport() -> httpx.MockTransport:
    jwk = json.loads(OKPAlgorithm.to_jwk(KEY.public_key()))
    jwk.update(kid=KID, use="sig", alg="EdDSA")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and str(request.url) == JWKS_URL:
            return httpx.Response(200, json={"keys": [jwk]})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def _kit_app() -> FastAPI:
    router = make_router("/demo/v1", tags=["demo"])

    @router.get("/me", operation_id="whoami", summary="Who am I", description="The caller.")
    async def whoami(principal: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"person": str(principal.person_id)}

    settings = KitSettings(log_json=False, log_level="WARNING", relay_background=False)
    spec = ServiceSpec(name="demo", title="Demo", description="A kit app.", routers=[router])
    return create_service_app(settings, spec, transport=_jwks_transport(), clock=FrozenClock(NOW))


@pytest.mark.parametrize(
    "changes",
    [{"nbf": EPOCH + 600}, {"exp": str(EPOCH + 300)}, {"sub": "not-a-uuid"}],
    ids=["nbf-future", "exp-string", "staff-sub-not-uuid"],
)
async def test_a_kit_app_answers_a_bad_token_with_a_401_problem(changes: dict[str, Any]) -> None:
    app = _kit_app()
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            good = await client.get(
                "/demo/v1/me", headers={"Authorization": f"Bearer {sign(claims())}"}
            )
            bad = await client.get(
                "/demo/v1/me", headers={"Authorization": f"Bearer {sign(claims(**changes))}"}
            )
    assert good.status_code == 200
    assert bad.status_code == 401, bad.text
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.headers["www-authenticate"].startswith("Bearer ")
    assert bad.json()["type"] == "https://upstander.dev/problems/unauthorized"


# ----------------------------------------------------------------------------- every service

# A staff token whose `sub` is no UUID, sent to a route of each service that reads the caller
# as a person. Each service runs in-process on its own SQLite file, its token checks fed by a
# stand-in gateway's JWKS (the gateway itself signs with its own key store).
STAFF_ROUTES: dict[str, tuple[str, str, list[str]]] = {
    "gateway": ("GET", "/identity/v1/people", ["admin"]),
    "intake": ("PUT", "/intake/v1/forms/demo", ["admin"]),
    "cases": ("GET", "/cases/v1/cases", ["case_manager"]),
    "training": ("GET", "/training/v1/completions", ["staff"]),
    "notify": ("GET", "/notify/v1/inbox", ["staff"]),
}


def _settings(service: str, directory: Path) -> Any:
    module = __import__(f"upstander.{service}.settings", fromlist=["Settings"])
    options: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{directory / service}.db",
        "log_json": False,
        "log_level": "WARNING",
        "relay_background": False,
    }
    extra: dict[str, dict[str, Any]] = {
        "gateway": {"bootstrap_demo": False},
        "cases": {"deadline_scheduler_background": False},
        "training": {"reminders_background": False},
        "notify": {"notify_worker_background": False, "mail_dir": str(directory / "mail")},
    }
    return module.Settings(**options, **extra.get(service, {}))


@asynccontextmanager
async def running(service: str, directory: Path) -> AsyncIterator[FastAPI]:
    module = __import__(f"upstander.{service}.app", fromlist=["create_app"])
    app: FastAPI = module.create_app(
        _settings(service, directory), transport=_jwks_transport(), clock=FrozenClock(NOW)
    )
    async with LifespanManager(app, startup_timeout=60):
        yield app


async def _token(service: str, app: FastAPI, **changes: Any) -> str:
    payload = claims(**changes)
    if service != "gateway":
        return sign(payload)
    # The gateway verifies with its own key store: sign with its current key.
    kid, key = await app.state.key_store.signing_key()
    return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": kid})


@pytest.mark.parametrize("service", list(STAFF_ROUTES))
async def test_every_service_answers_a_staff_token_with_a_non_uuid_sub_with_401(
    service: str, tmp_path: Path
) -> None:
    method, path, roles = STAFF_ROUTES[service]
    body: dict[str, Any] | None = {} if method in ("PUT", "POST") else None
    async with running(service, tmp_path) as app:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            good = await _token(service, app, roles=roles)
            bad = await _token(service, app, roles=roles, sub="alice@example.org")
            accepted = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {good}"}
            )
            refused_response = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {bad}"}
            )
    # The well-formed token gets past authentication (whatever the route then says).
    assert accepted.status_code not in (401, 500), accepted.text
    assert refused_response.status_code == 401, refused_response.text
    assert refused_response.headers["content-type"] == "application/problem+json"
    assert refused_response.headers["www-authenticate"].startswith("Bearer ")
