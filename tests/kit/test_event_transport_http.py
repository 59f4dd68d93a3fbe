"""Events on the embedded HTTP transport (the default): the relay sends a destination's events
in one batch request, which the consumer on SQLite commits once (a failing event rolled back
alone), an event its consumer refuses as malformed is dead at once with the reason, other
failures are retried, a claim outlives a slow batch but not a crashed relay,
and delivered rows and old inbox ids are pruned."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import Integer, String, Uuid, event, select
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.clock import Clock, FrozenClock
from upstander.kit.db import Base, make_metadata
from upstander.kit.errors import BadRequest, NotFound
from upstander.kit.events import (
    DEAD,
    DELIVERED,
    PENDING,
    CloudEvent,
    EventContext,
    EventPruner,
    HttpRelay,
    event_tables,
)
from upstander.kit.settings import KitSettings
from upstander.kit.testing import RoutingTransport

NOW = datetime(2026, 3, 2, 10, 17, tzinfo=UTC)
REPORT = "upstander.report.submitted"  # routed to cases by the kit catalogue
KID = "http-transport-test"
KEY = Ed25519PrivateKey.generate()


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


Outbox, Inbox = event_tables(Model)


class Effect(Model):
    __tablename__ = "effects"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    label: Mapped[str] = mapped_column(String(64))


class Script:
    def __init__(self) -> None:
        self.not_yet: set[str] = set()
        self.slow_seconds = 0.0
        self.calls: list[str] = []
        # Labels whose handler fails after its effect was added (to be rolled back).
        self.fail_late: set[str] = set()
        self.committed: list[str] = []  # after-commit callbacks, in the order they ran


async def on_report(event: CloudEvent, ctx: EventContext) -> None:
    script = ctx.require("script", Script)
    label = str(event.data.get("label"))
    script.calls.append(label)
    if event.data.get("malformed"):
        raise BadRequest(f"Malformed {event.type} data.", fields=["description"])
    if label in script.not_yet:
        script.not_yet.discard(label)
        raise NotFound("No case for that report yet.")
    if script.slow_seconds:
        await asyncio.sleep(script.slow_seconds)
    ctx.session.add(Effect(event_id=event.event_id, label=label))
    ctx.after_commit(lambda: script.committed.append(label))
    if label in script.fail_late:
        await ctx.session.flush()
        raise RuntimeError("the handler failed after writing")


def _service_token(clock: Clock) -> str:
    at = int(clock.now().timestamp())
    claims = {
        "iss": "upstander",
        "aud": "upstander",
        "sub": "svc-intake",
        "typ": "service",
        "roles": [],
        "scope": "",
        "iat": at,
        "exp": at + 300,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": KID})


def _fake_gateway(clock: Clock) -> httpx.MockTransport:
    """The gateway's JWKS and client-credentials grant, signing at the apps' clock."""
    jwk = json.loads(OKPAlgorithm.to_jwk(KEY.public_key()))
    jwk.update(kid=KID, use="sig", alg="EdDSA")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json={"keys": [jwk]})
        if request.url.path == "/auth/token":
            return httpx.Response(
                200, json={"access_token": _service_token(clock), "expires_in": 300}
            )
        return httpx.Response(404)

    return httpx.MockTransport(handler)


class Network(RoutingTransport):
    """The apps' network, counting the event requests that cross it."""

    def __init__(self, clock: Clock) -> None:
        super().__init__({"127.0.0.1:8000": _fake_gateway(clock)})
        self.event_requests: list[tuple[str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/internal/events" in request.url.path:
            body = json.loads(request.content)
            count = len(body) if isinstance(body, list) else 1
            self.event_requests.append((request.url.path, count))
        return await super().handle_async_request(request)


def _app(name: str, directory: Path, network: Network, clock: Clock, **overrides: Any) -> FastAPI:
    async def prepare(app: FastAPI) -> None:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(Model.metadata.create_all)
        app.state.script = Script()

    settings = KitSettings(
        database_url=f"sqlite+aiosqlite:///{directory}/{name}.db",
        log_json=False,
        log_level="WARNING",
        **{"relay_background": False, **overrides},
    )
    spec = ServiceSpec(
        name=name,
        title=name,
        description="A kit app on the HTTP transport.",
        on_startup=[prepare],
        event_tables=(Outbox, Inbox),
        event_handlers={"upstander.report.*": on_report} if name == "cases" else {},
    )
    app = create_service_app(settings, spec, transport=network, clock=clock)
    if name == "cases":
        network.add(settings.cases_url, httpx.ASGITransport(app, raise_app_exceptions=False))
    return app


@asynccontextmanager
async def _platform(
    directory: Path, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, FastAPI, Network]]:
    clock = clock or FrozenClock(NOW)
    network = Network(clock)
    intake = _app("intake", directory, network, clock, **overrides)
    cases = _app("cases", directory, network, clock, **overrides)
    async with AsyncExitStack() as stack:
        for app in (intake, cases):
            await stack.enter_async_context(LifespanManager(app, startup_timeout=60))
        yield intake, cases, network


async def _publish(app: FastAPI, label: str, **data: Any) -> uuid.UUID:
    async with app.state.sessionmaker() as session, session.begin():
        event_id: uuid.UUID = await app.state.events.publish(
            session, REPORT, f"report/{uuid.uuid4()}", {"label": label, **data}, org_id=None
        )
    return event_id


async def _rows(app: FastAPI) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Outbox).order_by(Outbox.seq))).all())


async def _labels(app: FastAPI) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Effect.label).order_by(Effect.seq))).all())


async def test_the_relay_sends_a_destinations_events_in_one_batch_request(tmp_path: Path) -> None:
    async with _platform(tmp_path) as (intake, cases, network):
        for number in range(5):
            await _publish(intake, f"report-{number}")
        assert await intake.state.relay.run_once() == 5

        assert network.event_requests == [("/cases/internal/events/batch", 5)]
        assert sorted(await _labels(cases)) == [f"report-{n}" for n in range(5)]
        assert {row.status for row in await _rows(intake)} == {DELIVERED}


async def test_a_batch_on_sqlite_is_one_commit_and_a_failing_event_is_rolled_back_alone(
    tmp_path: Path,
) -> None:
    """On SQLite a batch is one transaction, each event a savepoint: one commit (one sync to
    disk) for the batch, the failing event's writes and callbacks gone, the others kept."""
    async with _platform(tmp_path) as (intake, cases, _network):
        script = cases.state.script
        script.fail_late.add("b")
        commits: list[int] = []
        event.listen(cases.state.engine.sync_engine, "commit", lambda _c: commits.append(1))
        ids = {label: await _publish(intake, label) for label in ("a", "b", "c", "d")}
        assert await intake.state.relay.run_once() == 4
        async with cases.state.sessionmaker() as session:
            inbox_ids = set(await session.scalars(select(Inbox.event_id)))

        assert len(commits) == 1
        assert await _labels(cases) == ["a", "c", "d"]
        assert script.committed == ["a", "c", "d"]
        rows = {row.event_id: row for row in await _rows(intake)}
        assert rows[ids["b"]].status == PENDING  # failed: delivered again later
        assert {rows[ids[label]].status for label in ("a", "c", "d")} == {DELIVERED}
        assert ids["b"] not in inbox_ids and ids["a"] in inbox_ids

        intake.state.clock.advance(timedelta(seconds=2))
        script.fail_late.clear()
        assert await intake.state.relay.run_once() == 1
        assert await _labels(cases) == ["a", "c", "d", "b"]


async def test_an_event_its_consumer_refuses_as_malformed_is_dead_at_once_with_the_reason(
    tmp_path: Path,
) -> None:
    async with _platform(tmp_path) as (intake, cases, _network):
        bad = await _publish(intake, "bad", malformed=True)
        good = await _publish(intake, "good")
        await intake.state.relay.run_once()

        rows = {row.event_id: row for row in await _rows(intake)}
        assert rows[good].status == DELIVERED
        assert (rows[bad].status, rows[bad].attempts) == (DEAD, 1)
        assert "description" in (rows[bad].last_error or "")
        assert await _labels(cases) == ["good"]
        # Not tried again.
        intake.state.clock.advance(timedelta(days=1))
        assert await intake.state.relay.run_once() == 0
        assert cases.state.script.calls.count("bad") == 1


async def test_a_transient_failure_is_retried_with_backoff(tmp_path: Path) -> None:
    async with _platform(tmp_path) as (intake, cases, _network):
        cases.state.script.not_yet.add("early")
        await _publish(intake, "early")
        await intake.state.relay.run_once()
        [row] = await _rows(intake)
        assert (row.status, row.attempts) == (PENDING, 1)
        assert row.next_attempt_at > intake.state.clock.now()
        assert await intake.state.relay.run_once() == 0  # not due yet

        intake.state.clock.advance(timedelta(seconds=2))
        assert await intake.state.relay.run_once() == 1
        assert await _labels(cases) == ["early"]


async def test_a_crashed_relays_claim_comes_back_within_seconds(tmp_path: Path) -> None:
    async with _platform(tmp_path) as (intake, cases, _network):
        await _publish(intake, "orphan")
        relay: HttpRelay = intake.state.relay
        assert relay.policy.lease_seconds <= 10
        claimed = await relay._claim()  # ...and the process died holding it
        assert len(claimed) == 1
        assert await relay.run_once() == 0  # another replica leaves it alone meanwhile

        intake.state.clock.advance(timedelta(seconds=relay.policy.lease_seconds + 1))
        assert await relay.run_once() == 1
        assert await _labels(cases) == ["orphan"]


async def test_a_slow_batch_keeps_its_claim_while_it_is_in_flight(tmp_path: Path) -> None:
    async with _platform(tmp_path, clock=Clock(), relay_lease_seconds=1) as (intake, cases, _):
        cases.state.script.slow_seconds = 2.5
        await _publish(intake, "slow")
        relay: HttpRelay = intake.state.relay
        other_replica = HttpRelay(
            relay.bus, relay.sessionmaker, relay.http, relay.tokens, relay.settings, relay.policy
        )
        delivering = asyncio.create_task(relay.run_once())
        await asyncio.sleep(1.8)  # past the first lease: renewed, not expired
        assert await other_replica.run_once() == 0
        assert await delivering == 1
        assert cases.state.script.calls == ["slow"]
        assert await _labels(cases) == ["slow"]


async def test_delivered_rows_and_old_inbox_ids_are_pruned_by_age(tmp_path: Path) -> None:
    async with _platform(tmp_path) as (intake, cases, _network):
        await _publish(intake, "old")
        await _publish(intake, "refused", malformed=True)
        await intake.state.relay.run_once()
        clock: FrozenClock = intake.state.clock

        clock.advance(timedelta(days=8))
        await EventPruner(
            intake.state.events, intake.state.sessionmaker, intake.state.settings
        ).run_once()
        pruner = EventPruner(cases.state.events, cases.state.sessionmaker, cases.state.settings)
        await pruner.run_once()
        assert [row.status for row in await _rows(intake)] == [DEAD]  # dead letters stay
        async with cases.state.sessionmaker() as session:
            assert len((await session.scalars(select(Inbox))).all()) == 1  # kept 30 days

        clock.advance(timedelta(days=23))
        await pruner.run_once()
        async with cases.state.sessionmaker() as session:
            assert (await session.scalars(select(Inbox))).all() == []
