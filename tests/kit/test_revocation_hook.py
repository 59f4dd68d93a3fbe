"""The kit's revocation hook: a verified staff or API-client token is refused (401
`token-revoked`, with `WWW-Authenticate`) once its subject's access changed after it was
signed, its subject is inactive, or its organisation is; the ledger that decides it keeps the
latest change whatever order events arrive in; a kit app wires it all from `access_table`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
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
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.kit.app import ServiceSpec, create_service_app, make_router
from upstander.kit.auth import Principal, PrincipalKind, TokenVerifier, current_principal
from upstander.kit.clock import FrozenClock
from upstander.kit.db import Base, make_engine, make_metadata, make_sessionmaker
from upstander.kit.errors import TokenRevoked, Unauthorized
from upstander.kit.events import event_tables
from upstander.kit.revocation import (
    ACCESS_CHANGED,
    AccessChanged,
    AccessLedger,
    access_table,
)
from upstander.kit.settings import KitSettings

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
JWKS_URL = "http://127.0.0.1:8000/.well-known/jwks.json"
KID = "revocation-test"
KEY = Ed25519PrivateKey.generate()
REVOKED_TYPE = "https://upstander.dev/problems/token-revoked"


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


Outbox, Inbox = event_tables(Model)
AccessRecord = access_table(Model)


class FakeKeys:
    async def key(self, kid: str) -> Any:
        if kid != KID:
            raise Unauthorized("The token was signed with an unknown key.")
        return KEY.public_key()


def token(
    *,
    sub: str | None = None,
    org: uuid.UUID | None = None,
    typ: str = "staff",
    version: object = None,
    **extra: Any,
) -> str:
    at = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": "upstander",
        "aud": "upstander",
        "sub": sub or str(uuid.uuid4()),
        "typ": typ,
        "roles": ["admin"] if typ == "staff" else [],
        "scope": "",
        "iat": at,
        "exp": at + 300,
        "jti": uuid.uuid4().hex,
        **extra,
    }
    if org is not None:
        claims["org"] = str(org)
    if version is not None:
        claims["access_version"] = version
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": KID})


def change(
    kind: str, subject: str, *, version: int = 1, active: bool = True, **extra: Any
) -> AccessChanged:
    return AccessChanged.model_validate(
        {
            "kind": kind,
            "subject": subject,
            "org_id": extra.pop("org_id", None),
            "active": active,
            "version": version,
            "changed_at": extra.pop("changed_at", NOW),
        }
    )


# ----------------------------------------------------------------------------- the hook


async def test_the_verifier_refuses_a_token_its_revocation_check_revokes() -> None:
    asked: list[Principal] = []

    async def revoked(principal: Principal) -> bool:
        asked.append(principal)
        return True

    verifier = TokenVerifier(
        FakeKeys(),
        audience="upstander",
        issuer="upstander",
        clock=FrozenClock(NOW),
        revocation_check=revoked,
    )
    with pytest.raises(TokenRevoked) as caught:
        await verifier.verify(token(org=uuid.uuid4()))
    error = caught.value
    assert (error.status, error.slug) == (401, "token-revoked")
    assert error.headers["WWW-Authenticate"].startswith('Bearer realm="upstander"')
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
    assert [p.kind for p in asked] == [PrincipalKind.STAFF]


async def test_reporter_and_service_tokens_are_never_put_to_the_revocation_check() -> None:
    async def revoked(principal: Principal) -> bool:
        raise AssertionError(f"asked about a {principal.kind} token")

    verifier = TokenVerifier(
        FakeKeys(), audience="upstander", issuer="upstander", clock=FrozenClock(NOW)
    )
    verifier.revocation_check = revoked
    report = uuid.uuid4()
    reporter = await verifier.verify(
        token(sub=f"reporter:{report}", typ="reporter", org=uuid.uuid4(), report=str(report))
    )
    service = await verifier.verify(token(sub="svc-cases", typ="service"))
    assert (reporter.kind, service.kind) == (PrincipalKind.REPORTER, PrincipalKind.SERVICE)


# ----------------------------------------------------------------------------- the ledger


@pytest.fixture
async def sessionmaker(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    async with engine.begin() as connection:
        await connection.run_sync(Model.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _apply(
    sessionmaker: async_sessionmaker[AsyncSession], ledger: AccessLedger, *changes: AccessChanged
) -> None:
    for item in changes:
        async with sessionmaker() as session:
            await ledger.apply(session, item)
            await session.commit()


async def _principal(raw: str) -> Principal:
    verifier = TokenVerifier(
        FakeKeys(), audience="upstander", issuer="upstander", clock=FrozenClock(NOW)
    )
    return await verifier.verify(raw)


async def test_a_subject_the_ledger_never_heard_of_keeps_its_tokens(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    old = await _principal(token(org=uuid.uuid4()))  # signed before versions existed
    assert await ledger.is_revoked(old) is False


async def test_a_token_signed_before_the_subjects_last_change_is_revoked_and_a_later_one_is_not(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    person, org = str(uuid.uuid4()), uuid.uuid4()
    await _apply(sessionmaker, ledger, change("staff", person, version=3, org_id=org))
    assert await ledger.is_revoked(await _principal(token(sub=person, org=org, version=2)))
    assert await ledger.is_revoked(await _principal(token(sub=person, org=org)))
    assert not await ledger.is_revoked(await _principal(token(sub=person, org=org, version=3)))
    # Another person of the same org is untouched.
    other = await _principal(token(org=org, version=0))
    assert not await ledger.is_revoked(other)


async def test_an_inactive_subject_is_revoked_whatever_its_tokens_version(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    person, org = str(uuid.uuid4()), uuid.uuid4()
    await _apply(sessionmaker, ledger, change("staff", person, version=1, active=False))
    assert await ledger.is_revoked(await _principal(token(sub=person, org=org, version=1)))
    assert await ledger.is_revoked(await _principal(token(sub=person, org=org, version=9)))


async def test_a_deactivated_client_is_revoked_by_its_client_id(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    org = uuid.uuid4()
    await _apply(sessionmaker, ledger, change("client", "cl_hr", version=1, active=False))
    client = await _principal(token(sub="cl_hr", typ="client", org=org, version=0))
    other = await _principal(token(sub="cl_lms", typ="client", org=org, version=0))
    assert await ledger.is_revoked(client)
    assert not await ledger.is_revoked(other)


async def test_an_inactive_org_revokes_every_staff_and_client_token_of_that_org_only(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    org, elsewhere = uuid.uuid4(), uuid.uuid4()
    await _apply(sessionmaker, ledger, change("org", str(org), version=0, active=False))
    assert await ledger.is_revoked(await _principal(token(org=org, version=0)))
    assert await ledger.is_revoked(await _principal(token(sub="cl_a", typ="client", org=org)))
    assert not await ledger.is_revoked(await _principal(token(org=elsewhere, version=0)))
    # Back on: the org's tokens work again (nothing about the people themselves changed).
    later = change("org", str(org), version=0, active=True, changed_at=NOW + timedelta(seconds=1))
    await _apply(sessionmaker, ledger, later)
    assert not await ledger.is_revoked(await _principal(token(org=org, version=0)))


async def test_the_ledger_keeps_the_latest_change_when_events_repeat_or_arrive_out_of_order(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    person, org = str(uuid.uuid4()), uuid.uuid4()
    deactivated = change("staff", person, version=2, active=False)
    earlier_role_change = change("staff", person, version=1, active=True)
    await _apply(sessionmaker, ledger, deactivated, earlier_role_change, deactivated)
    state = (await ledger.states([("staff", person)]))[("staff", person)]
    assert state is not None and (state.version, state.active) == (2, False)
    assert await ledger.is_revoked(await _principal(token(sub=person, org=org, version=2)))


@pytest.mark.parametrize("claimed", ["3", -1, True, 1.5, [1]])
async def test_a_malformed_access_version_claim_is_revoked(
    sessionmaker: async_sessionmaker[AsyncSession], claimed: object
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    principal = await _principal(token(org=uuid.uuid4(), version=claimed))
    assert await ledger.is_revoked(principal)


async def test_the_cache_answers_until_it_expires_and_a_remembered_change_counts_at_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=60)
    person, org = str(uuid.uuid4()), uuid.uuid4()
    principal = await _principal(token(sub=person, org=org, version=0))
    assert not await ledger.is_revoked(principal)  # "never changed" is now cached
    # Written behind the cache's back (another replica took the event): not seen yet...
    other_replica = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    await _apply(sessionmaker, other_replica, change("staff", person, version=1))
    assert not await ledger.is_revoked(principal)
    # ...until the entry expires, or, in the process that handled the event, at once.
    state = (await other_replica.states([("staff", person)]))[("staff", person)]
    ledger.remember(("staff", person), state)
    assert await ledger.is_revoked(principal)


async def test_the_cache_stays_bounded(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=60, max_entries=10)
    for _ in range(25):
        await ledger.is_revoked(await _principal(token(org=uuid.uuid4())))
    assert len(ledger._cache) <= 10


# ----------------------------------------------------------------------------- a kit app


def _jwks_transport() -> httpx.MockTransport:
    jwk = json.loads(OKPAlgorithm.to_jwk(KEY.public_key()))
    jwk.update(kid=KID, use="sig", alg="EdDSA")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and str(request.url) == JWKS_URL:
            return httpx.Response(200, json={"keys": [jwk]})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def _kit_app(database: Path) -> FastAPI:
    router = make_router("/demo/v1", tags=["demo"])

    @router.get("/me", operation_id="whoami", summary="Who am I", description="The caller.")
    async def whoami(principal: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"subject": principal.subject}

    async def create_tables(app: FastAPI) -> None:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(Model.metadata.create_all)

    settings = KitSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        log_json=False,
        log_level="WARNING",
        relay_background=False,
        access_cache_seconds=60,  # the event handler, not the expiry, must make it count
    )
    spec = ServiceSpec(
        name="demo",
        title="Demo",
        description="A kit app.",
        routers=[router],
        on_startup=[create_tables],
        event_tables=(Outbox, Inbox),
        access_table=AccessRecord,
    )
    return create_service_app(settings, spec, transport=_jwks_transport(), clock=FrozenClock(NOW))


async def test_a_kit_app_with_an_access_table_refuses_a_token_on_the_request_after_the_event(
    tmp_path: Path,
) -> None:
    app = _kit_app(tmp_path / "demo.db")
    person, org = str(uuid.uuid4()), uuid.uuid4()
    before = {"Authorization": f"Bearer {token(sub=person, org=org, version=0)}"}
    after = {"Authorization": f"Bearer {token(sub=person, org=org, version=1)}"}
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/gateway",
        "type": ACCESS_CHANGED,
        "subject": f"person/{person}",
        "time": NOW.isoformat(),
        "orgid": str(org),
        "data": change("staff", person, version=1, org_id=org).model_dump(mode="json"),
    }
    service = {"Authorization": f"Bearer {token(sub='svc-gateway', typ='service')}"}
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = await client.get("/demo/v1/me", headers=before)  # caches "never changed"
            delivered = await client.post("/demo/internal/events", json=event, headers=service)
            revoked = await client.get("/demo/v1/me", headers=before)
            fresh = await client.get("/demo/v1/me", headers=after)
    assert first.status_code == 200
    assert delivered.status_code == 200 and delivered.json()["status"] == "processed"
    assert revoked.status_code == 401, revoked.text
    assert revoked.headers["content-type"] == "application/problem+json"
    assert revoked.json()["type"] == REVOKED_TYPE
    assert "invalid_token" in revoked.headers["www-authenticate"]
    assert fresh.status_code == 200 and fresh.json() == {"subject": person}


async def test_a_malformed_access_event_is_a_400_and_changes_nothing(tmp_path: Path) -> None:
    app = _kit_app(tmp_path / "demo.db")
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/gateway",
        "type": ACCESS_CHANGED,
        "time": NOW.isoformat(),
        "data": {"kind": "staff", "subject": "x", "version": -1},
    }
    service = {"Authorization": f"Bearer {token(sub='svc-gateway', typ='service')}"}
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.post("/demo/internal/events", json=event, headers=service)
    assert refused.status_code == 400, refused.text
    assert set(refused.json()["fields"]) == {"active", "changed_at", "version"}


async def test_checks_that_miss_the_cache_together_are_read_in_one_query(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Fifty tokens checked at once, none in the cache (a restart, an expiry under load): one
    or two ledger queries, not fifty, and each check still gets its own subject's answer."""
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)
    org = uuid.uuid4()
    people = [str(uuid.uuid4()) for _ in range(50)]
    revoked = set(people[::7])
    await _apply(
        sessionmaker,
        ledger,
        *(change("staff", person, version=2, org_id=org) for person in revoked),
    )
    queries: list[str] = []
    engine = sessionmaker.kw["bind"].sync_engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "access" in statement.lower():
            queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        principals = [await _principal(token(sub=p, org=org, version=1)) for p in people]
        answers = await asyncio.gather(*(ledger.is_revoked(p) for p in principals))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert {p for p, a in zip(people, answers, strict=True) if a} == revoked
    assert 1 <= len(queries) <= 2  # the first caller's read, then everyone who joined it


async def test_a_failed_read_fails_every_check_that_waited_for_it(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = AccessLedger(sessionmaker, AccessRecord, cache_seconds=0)

    async def broken(keys: list[Any]) -> dict[Any, Any]:
        await asyncio.sleep(0)
        raise OSError("the database went away")

    monkeypatch.setattr(ledger, "_load", broken)
    principals = [await _principal(token(org=uuid.uuid4())) for _ in range(5)]
    outcomes = await asyncio.gather(
        *(ledger.is_revoked(p) for p in principals), return_exceptions=True
    )
    assert all(isinstance(o, OSError) for o in outcomes)
    assert ledger._reading == {} and ledger._queued == []
