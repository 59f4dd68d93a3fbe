"""Events on NATS JetStream (`UPSTANDER_EVENT_TRANSPORT=nats`): kit apps publish from their
outbox to a private nats-server and consume through durable consumers, and every effect
still happens exactly once, in order per subject, through duplicates, crashes, malformed
events and a broker outage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from nats.aio.msg import Msg
from nats_support import NatsServer, private_nats_server
from pydantic import BaseModel
from sqlalchemy import Integer, String, Uuid, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.catalogue import subscribers
from upstander.kit.clock import Clock, FrozenClock
from upstander.kit.db import Base, make_metadata
from upstander.kit.errors import BadRequest
from upstander.kit.events import (
    DEAD,
    DELIVERED,
    PENDING,
    PROCESSED,
    CloudEvent,
    EventContext,
    Subscription,
    event_tables,
    subscriptions_for,
)
from upstander.kit.jetstream import NatsTransport, lane_of
from upstander.kit.settings import KitSettings

NOW = datetime(2026, 3, 2, 10, 17, tzinfo=UTC)
THING = "upstander.thing.happened"


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


Outbox, Inbox = event_tables(Model)


class Effect(Model):
    """What the test handler does: one row per event it handled."""

    __tablename__ = "effects"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    subject: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(64))


class ThingData(BaseModel):
    label: str


class Script:
    """How the handler behaves, per label: crash this many times first; and what it saw."""

    def __init__(self) -> None:
        self.crashes: dict[str, int] = {}
        self.calls: list[str] = []


async def on_thing(event: CloudEvent, ctx: EventContext) -> None:
    script = ctx.require("script", Script)
    if event.data.get("malformed") == "problem":
        raise BadRequest(f"Malformed {event.type} data.", fields=["label"])
    thing = ThingData.model_validate(event.data)  # a ValidationError if it has no label
    script.calls.append(thing.label)
    if script.crashes.get(thing.label, 0) > 0:
        script.crashes[thing.label] -= 1
        raise RuntimeError("the handler crashed")
    assert event.subject is not None
    ctx.session.add(Effect(event_id=event.event_id, subject=event.subject, label=thing.label))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A private nats-server with JetStream for this test (tests/nats_support.py)."""
    with private_nats_server(tmp_path / "nats") as server:
        yield server


def _kit_app(
    name: str,
    directory: Path,
    server: NatsServer,
    *,
    consumes: bool = True,
    clock: Clock | None = None,
    **overrides: Any,
) -> FastAPI:
    async def prepare(app: FastAPI) -> None:
        async with app.state.engine.begin() as connection:
            await connection.run_sync(Model.metadata.create_all)
        app.state.script = Script()

    settings = KitSettings(
        database_url=f"sqlite+aiosqlite:///{directory}/{name}.db",
        log_json=False,
        log_level="WARNING",
        event_transport="nats",
        nats_url=server.url,
        nats_partitions=2,
        **{"relay_background": False, **overrides},
    )
    spec = ServiceSpec(
        name=name,
        title=name,
        description="A kit app on NATS.",
        on_startup=[prepare],
        event_tables=(Outbox, Inbox),
        event_handlers={"upstander.thing.*": on_thing} if consumes else {},
    )
    no_network = httpx.MockTransport(lambda request: httpx.Response(404))
    return create_service_app(settings, spec, transport=no_network, clock=clock or FrozenClock(NOW))


@asynccontextmanager
async def _running(*apps: FastAPI) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(LifespanManager(app, startup_timeout=60))
        yield


async def _publish(app: FastAPI, subject: str, **data: Any) -> uuid.UUID:
    async with app.state.sessionmaker() as session, session.begin():
        event_id: uuid.UUID = await app.state.events.publish(
            session, THING, subject, data, org_id=None
        )
    return event_id


async def _drain(*apps: FastAPI, rounds: int = 50) -> None:
    for _ in range(rounds):
        moved = 0
        for app in apps:
            moved += await app.state.relay.run_once()
        if moved == 0:
            return
    raise AssertionError("the apps did not drain")


async def _effects(app: FastAPI) -> list[Effect]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Effect).order_by(Effect.seq))).all())


async def _inbox(app: FastAPI) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Inbox))).all())


async def _outbox_statuses(app: FastAPI) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Outbox.status).order_by(Outbox.seq))).all())


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


def _lanes_of(app: FastAPI) -> list[Any]:
    transport = app.state.relay
    assert isinstance(transport, NatsTransport)
    return transport.lanes


# ----------------------------------------------------------------------------- declarations


def test_each_service_subscribes_on_nats_to_what_it_handles_and_http_delivers_it() -> None:
    from upstander.cases.events import HANDLERS as CASES
    from upstander.intake.events import HANDLERS as INTAKE
    from upstander.notify.events import HANDLERS as NOTIFY
    from upstander.training.events import HANDLERS as TRAINING

    for service, handlers in {
        "intake": INTAKE,
        "cases": CASES,
        "training": TRAINING,
        "notify": NOTIFY,
    }.items():
        subscriptions = subscriptions_for(handlers)
        for pattern in handlers:
            example = pattern.replace("*", "example")
            # NATS: a subscription of the service's own filters the type...
            assert any(s.types.split(".")[:2] == example.split(".")[:2] for s in subscriptions)
            # ...and the HTTP transport's catalogue sends it there too.
            assert service in subscribers(example), (service, pattern)
    assert [s.name for s in subscriptions_for(CASES)] == ["org", "person", "report"]
    # A report and its later attachments share one subscription, hence one order.
    assert subscriptions_for(CASES)[-1] == Subscription("report", "upstander.report.*")


def test_an_event_keeps_its_lane_for_its_subject() -> None:
    lanes = {lane_of(f"case/{uuid.uuid4()}", 8) for _ in range(200)}
    assert lanes == set(range(8))  # spread over every lane...
    assert lane_of("case/42", 8) == lane_of("case/42", 8)  # ...one subject, always one lane


# ----------------------------------------------------------------------------- delivery


async def test_a_published_event_is_handled_once_by_its_subscriber(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False)
    consumer = _kit_app("sub", tmp_path, nats_server)
    async with _running(publisher, consumer):
        event_id = await _publish(publisher, "thing/1", label="first")
        await _drain(publisher, consumer)
        await _drain(publisher, consumer)

        effects = await _effects(consumer)
        assert [(e.event_id, e.label) for e in effects] == [(event_id, "first")]
        assert [(r.event_id, r.status) for r in await _inbox(consumer)] == [(event_id, PROCESSED)]
        # One outbox row per event, whoever subscribes, delivered once it is on the stream.
        assert await _outbox_statuses(publisher) == [DELIVERED]


async def test_a_duplicate_publish_is_dropped_by_the_broker_by_event_id(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False)
    consumer = _kit_app("sub", tmp_path, nats_server)
    async with _running(publisher, consumer):
        await _publish(publisher, "thing/1", label="once")
        assert await publisher.state.relay.run_once() == 1
        # The relay died after publishing and before recording it: the row is due again.
        async with publisher.state.sessionmaker() as session, session.begin():
            await session.execute(update(Outbox).values(status=PENDING, delivered_at=None))
        assert await publisher.state.relay.run_once() == 1

        connection = await nats.connect(nats_server.url)
        try:
            stream = await connection.jetstream().stream_info("UPSTANDER")
        finally:
            await connection.close()
        assert stream.state.messages == 1
        await _drain(publisher, consumer)
        assert [e.label for e in await _effects(consumer)] == ["once"]


async def test_a_redelivery_after_a_crash_before_the_ack_is_skipped_by_the_inbox(
    tmp_path: Path, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False)
    consumer = _kit_app("sub", tmp_path, nats_server, nats_ack_wait_seconds=1)
    lost = {"acks": 1}
    real_ack = Msg.ack

    async def lossy_ack(self: Msg) -> None:
        if lost["acks"]:  # the process died after its commit, before the ack left
            lost["acks"] -= 1
            return
        await real_ack(self)

    monkeypatch.setattr(Msg, "ack", lossy_ack)
    async with _running(publisher, consumer):
        await _publish(publisher, "thing/1", label="effect")
        await _drain(publisher, consumer)
        assert [e.label for e in await _effects(consumer)] == ["effect"]

        await asyncio.sleep(1.5)  # the broker's ack wait ends: it delivers the event again
        redelivered = 0
        for lane in _lanes_of(consumer):
            redelivered += await lane.drain()
        assert redelivered == 1
        script: Script = consumer.state.script
        assert script.calls == ["effect"]  # the handler ran once
        assert [e.label for e in await _effects(consumer)] == ["effect"]


@pytest.mark.parametrize("malformed", ["problem", "validation"])
async def test_an_event_that_can_never_succeed_is_a_dead_letter_at_once(
    tmp_path: Path, nats_server: NatsServer, malformed: str
) -> None:
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False)
    consumer = _kit_app("sub", tmp_path, nats_server)
    async with _running(publisher, consumer):
        data = {"malformed": "problem", "label": "bad"} if malformed == "problem" else {}
        bad = await _publish(publisher, "thing/1", **data)
        await _drain(publisher, consumer)

        [row] = await _inbox(consumer)
        assert (row.event_id, row.status) == (bad, DEAD)
        assert "label" in (row.reason or "")
        assert await _effects(consumer) == []
        # Terminated, not waiting to be retried: the lane goes on at once.
        good = await _publish(publisher, "thing/1", label="next")
        await _drain(publisher, consumer)
        assert [e.event_id for e in await _effects(consumer)] == [good]
        script: Script = consumer.state.script
        assert script.calls.count("bad") == 0 and script.calls == ["next"]


async def test_a_new_durable_consumer_replays_the_history(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False)
    early = _kit_app("early", tmp_path, nats_server)
    async with _running(publisher, early):
        for label in ("one", "two", "three"):
            await _publish(publisher, f"thing/{label}", label=label)
        await _drain(publisher, early)
        assert len(await _effects(early)) == 3

        late = _kit_app("late", tmp_path, nats_server)
        async with _running(late):
            await _drain(publisher, early, late)
            assert sorted(e.label for e in await _effects(late)) == ["one", "three", "two"]
        assert len(await _effects(early)) == 3  # nothing twice for the first one


async def test_events_about_one_subject_are_handled_in_order_through_a_retry(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False)
    consumer = _kit_app("sub", tmp_path, nats_server, relay_base_delay_seconds=0.3)
    async with _running(publisher, consumer):
        script: Script = consumer.state.script
        script.crashes["a1"] = 2  # fails twice, then works
        for label in ("a1", "a2", "a3"):
            await _publish(publisher, "thing/a", label=label)
        await _publish(publisher, "thing/b", label="b1")
        await _drain(publisher, consumer)
        # a1 waits out a retry delay; a2 and a3 wait behind it.
        assert "a2" not in script.calls and "a3" not in script.calls

        async def all_handled() -> bool:
            await _drain(publisher, consumer)
            return len(await _effects(consumer)) == 4

        assert await _eventually(all_handled, timeout=20)
        about_a = [e.label for e in await _effects(consumer) if e.subject == "thing/a"]
        assert about_a == ["a1", "a2", "a3"]
        last_a1 = max(i for i, label in enumerate(script.calls) if label == "a1")
        assert script.calls.count("a1") == 3 and script.calls.index("a2") > last_a1


# ----------------------------------------------------------------------------- outage


async def test_a_broker_outage_loses_no_event_and_delivery_resumes_by_itself(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    background = {
        "relay_background": True,
        "relay_poll_seconds": 0.2,
        "nats_ack_wait_seconds": 2,
        "clock": Clock(),
    }
    publisher = _kit_app("pub", tmp_path, nats_server, consumes=False, **background)
    consumer = _kit_app("sub", tmp_path, nats_server, **background)
    async with _running(publisher, consumer):
        before = [await _publish(publisher, f"thing/{i}", label=f"before-{i}") for i in range(3)]

        def handled(count: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return len(await _effects(consumer)) == count

            return check

        assert await _eventually(handled(3)), await _effects(consumer)

        nats_server.stop()
        during = [await _publish(publisher, f"thing/{i}", label=f"during-{i}") for i in range(10)]
        await asyncio.sleep(1.0)
        # The outbox keeps them while the broker is away.
        statuses = await _outbox_statuses(publisher)
        assert statuses.count(PENDING) == 10 and DEAD not in statuses

        nats_server.start()
        assert await _eventually(handled(13), timeout=60), await _effects(consumer)
        effects = await _effects(consumer)
        assert sorted(e.event_id for e in effects) == sorted(before + during)

        async def all_delivered() -> bool:
            return set(await _outbox_statuses(publisher)) == {DELIVERED}

        assert await _eventually(all_delivered)
        await asyncio.sleep(2.5)  # past the ack wait: nothing comes twice
        async with consumer.state.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Effect)) == 13
