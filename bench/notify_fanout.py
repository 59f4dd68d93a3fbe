"""Notify fan-out bench: (1) one training reminder reaching 10,000 people through an org rule
(`role:staff`) — every in-app message written, every digest email handed to a local aiosmtpd
server; (2) 1,000 events delivered to a local webhook receiver (a plain asyncio HTTP server),
with throughput and p99 latency. Everything stays on 127.0.0.1 and is bounded.

    uv run --no-sync python bench/notify_fanout.py [--people 10000] [--webhooks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from upstander.kit.clock import FrozenClock
from upstander.kit.events import CloudEvent, EventContext
from upstander.notify.app import create_app
from upstander.notify.events import on_notice
from upstander.notify.models import Delivery, InboxMessage, Person, WebhookDelivery
from upstander.notify.rules.service import put_rule
from upstander.notify.settings import Settings
from upstander.notify.webhooks.service import create_webhook


class Counter:
    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def http_receiver(connections: list[asyncio.StreamWriter]) -> asyncio.Server:
    """A minimal HTTP/1.1 keep-alive server answering 204 to every POST."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0, limit=1 << 20)


def context_for(app: Any, session: Any) -> EventContext:
    return EventContext.for_app(app, session)


def envelope(event_type: str, org_id: uuid.UUID, data: dict[str, Any], at: datetime) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/training",
        type=event_type,
        subject="person/x",
        time=at,
        orgid=str(org_id),
        data=data,
    )


async def seed_people(app: Any, org_id: uuid.UUID, count: int) -> None:
    vault = app.state.vault
    for start in range(0, count, 1000):
        async with app.state.sessionmaker() as session, session.begin():
            for index in range(start, min(count, start + 1000)):
                person_id = uuid.uuid4()
                await vault.create_key(session, org_id=org_id, owner_id=person_id)
                session.add(
                    Person(
                        id=person_id,
                        org_id=org_id,
                        email=f"person{index}@example.org",
                        name=f"Person {index}",
                        roles=["staff"],
                        language="es" if index % 3 == 0 else "en",
                        active=True,
                    )
                )


async def fanout(app: Any, clock: FrozenClock, smtp: Counter, people: int) -> None:
    org_id = uuid.uuid4()
    await seed_people(app, org_id, people)
    async with app.state.sessionmaker() as session, session.begin():
        await put_rule(
            session,
            org_id,
            "upstander.training.due_soon",
            recipients=["role:staff"],
            channels=["inbox", "email"],
            urgent=False,
            now=clock.now(),
        )
    event = envelope(
        "upstander.training.due_soon", org_id, {"course_id": str(uuid.uuid4())}, clock.now()
    )
    started = time.perf_counter()
    async with app.state.sessionmaker() as session, session.begin():
        await on_notice(event, context_for(app, session))
    written = time.perf_counter() - started
    clock.advance(timedelta(days=1))  # past the digest hour: the batch is due
    while await app.state.worker.run_once():
        pass
    elapsed = time.perf_counter() - started
    async with app.state.sessionmaker() as session:
        inbox = await session.scalar(
            select(func.count()).select_from(InboxMessage).where(InboxMessage.org_id == org_id)
        )
        sent = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.org_id == org_id, Delivery.channel == "email", Delivery.status == "sent"
            )
        )
    assert inbox == people and sent == people and smtp.received >= people, (inbox, sent)
    print(
        f"fan-out: {people} people, {inbox} in-app messages, {smtp.received} emails to SMTP: "
        f"{elapsed:.2f} s (in-app written in {written:.2f} s) — target <= 60 s"
    )


async def webhooks(app: Any, clock: FrozenClock, events: int) -> None:
    connections: list[asyncio.StreamWriter] = []
    server = await http_receiver(connections)
    port = server.sockets[0].getsockname()[1]
    org_id = uuid.uuid4()
    async with app.state.sessionmaker() as session, session.begin():
        await create_webhook(
            session,
            app.state.vault,
            org_id,
            url=f"http://127.0.0.1:{port}/hook",
            event_types=["upstander.case.*"],
            description="bench",
            allow_http=True,
            now=clock.now(),
        )
    for start in range(0, events, 200):
        async with app.state.sessionmaker() as session, session.begin():
            for _ in range(start, min(events, start + 200)):
                data = {"case_id": str(uuid.uuid4()), "number": "BENCH-1", "author": "system"}
                await on_notice(
                    envelope("upstander.case.updated", org_id, data, clock.now()),
                    context_for(app, session),
                )  # fmt: skip
    started = time.perf_counter()
    while await app.state.worker.webhooks.run_once():
        pass
    elapsed = time.perf_counter() - started
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(
                select(WebhookDelivery.status, WebhookDelivery.latency_ms).where(
                    WebhookDelivery.org_id == org_id
                )
            )
        ).all()
    server.close()
    for writer in connections:
        writer.close()
    with contextlib.suppress(Exception):
        await server.wait_closed()
    latencies = sorted(float(ms or 0) for _, ms in rows)
    sent = sum(1 for status, _ in rows if status == "sent")
    assert sent == events, sent
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]
    print(
        f"webhooks: {sent} events delivered in {elapsed:.2f} s = {sent / elapsed:.0f}/s; "
        f"request latency p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms"
    )


async def main(people: int, events: int) -> None:
    smtp = Counter()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    clock = FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    try:
        with tempfile.TemporaryDirectory() as directory:
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{Path(directory) / 'notify.db'}",
                log_json=False,
                log_level="WARNING",
                relay_background=False,
                notify_worker_background=False,
                mail_dir=str(Path(directory) / "mail"),
                smtp_host="127.0.0.1",
                smtp_port=controller.port,
                webhook_allow_http=True,
            )
            app = create_app(settings, clock=clock)
            async with LifespanManager(app):
                await fanout(app, clock, smtp, people)
                await webhooks(app, clock, events)
    finally:
        controller.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--webhooks", type=int, default=1_000)
    arguments = parser.parse_args()
    asyncio.run(main(min(arguments.people, 50_000), min(arguments.webhooks, 10_000)))
