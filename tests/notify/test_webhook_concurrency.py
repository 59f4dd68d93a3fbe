"""Webhook delivery over the real network: a slow receiver holds only its own slots, every
attempt is signed as it leaves (so it verifies with `standardwebhooks` when it arrives), each
try is kept in the delivery log, and bulk replay sends what is waiting for its next retry.

Receivers are `http.server`s on free loopback ports; the app's webhook client is swapped for
the real SSRF-guarded one (loopback allowed, as in dev), and the app's clock is the real one."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from upstander.notify.webhooks.targets import TargetPolicy, webhook_client

PATH = "/notify/v1/webhooks"
SLOW_SECONDS = 3.0


@dataclass
class Arrival:
    """One request as the receiver saw it, checked the moment it arrived."""

    name: str
    headers: dict[str, str]
    body: bytes
    arrived: float  # unix time
    refused: str | None  # None when `standardwebhooks` verified it on arrival
    answered: float = 0.0


@dataclass
class Receiver:
    """An outside system on 127.0.0.1: verifies each request with the endpoint's secret as it
    arrives, waits `delay` seconds, then answers from the endpoint's plan (then 200)."""

    delay: float = 0.0
    secrets: dict[str, str] = field(default_factory=dict)
    plans: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)
    busy: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def at(self, name: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.name == name]

    def handle(self, name: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        arrived = time.time()
        try:
            Verifier(self.secrets[name]).verify(body, headers)
            refused = None
        except (KeyError, WebhookVerificationError) as exc:
            refused = repr(exc)
        arrival = Arrival(name, headers, body, arrived, refused)
        with self.lock:
            self.arrivals.append(arrival)
            self.busy += 1
            self.peak = max(self.peak, self.busy)
            plan = self.plans.get(name) or []
            answer = plan.pop(0) if plan else (200, {})
        time.sleep(self.delay)
        with self.lock:
            self.busy -= 1
            arrival.answered = time.time()
        return answer


def serve(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra = receiver.handle(self.path.lstrip("/"), headers, body)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def slow() -> Iterator[Receiver]:
    yield from serve(Receiver(delay=SLOW_SECONDS))


@pytest.fixture
def fast() -> Iterator[Receiver]:
    yield from serve(Receiver())


@pytest_asyncio.fixture(loop_scope="session")
async def network(app: Any) -> AsyncIterator[None]:
    """Deliveries go out through the real guarded client instead of the test transport."""
    dispatcher = app.state.worker.webhooks
    original = dispatcher.http
    dispatcher.http = webhook_client(TargetPolicy(allow_loopback=True), timeout=10)
    try:
        yield
    finally:
        await dispatcher.http.aclose()
        dispatcher.http = original


async def register(client: Any, admin: Any, receiver: Receiver, name: str) -> dict[str, Any]:
    response = await client.post(
        PATH,
        json={"url": receiver.url(name), "event_types": ["upstander.case.*"]},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    hook = dict(response.json())
    receiver.secrets[name] = hook["secret"]
    return hook


async def open_case(events: Any, org_id: uuid.UUID, number: str) -> None:
    await events.publish(
        "upstander.case.opened",
        {"case_id": str(uuid.uuid4()), "number": number, "routed_to": "case_managers"},
        org_id=org_id,
    )


async def log_of(client: Any, admin: Any, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(f"{PATH}/{hook['id']}/deliveries", headers=admin.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def wait_until(condition: Callable[[], bool], seconds: float) -> float:
    """Poll `condition` for up to `seconds`; returns when it held (unix time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.02)
    return time.time()


def signed_on_arrival(arrival: Arrival) -> bool:
    """Verified by `standardwebhooks` as it arrived, with a timestamp of that moment (not of
    some earlier batch)."""
    age = arrival.arrived - int(arrival.headers["webhook-timestamp"])
    return arrival.refused is None and 0 <= age < 2


async def test_a_slow_receiver_does_not_hold_up_another_endpoints_deliveries(
    app, client, caller, events, network, slow: Receiver, fast: Receiver
) -> None:
    slow_admin, fast_admin = caller("admin"), caller("admin")  # two organisations
    slow_hook = await register(client, slow_admin, slow, "slow")
    fast_hook = await register(client, fast_admin, fast, "fast")
    worker = app.state.worker
    for n in range(4):
        await open_case(events, slow_admin.org_id, f"SLOW-{n}")
    worker.start()
    try:
        # The slow endpoint takes its two slots (its per-endpoint limit) and holds them 3 s...
        await wait_until(lambda: slow.busy == 2, 5)
        # ...while events for another org's endpoint come in and go straight out.
        for n in range(4):
            await open_case(events, fast_admin.org_id, f"FAST-{n}")
        fast_done = await wait_until(lambda: len(fast.at("fast")) == 4, SLOW_SECONDS)
        first_slow_answer = min(a.answered or time.time() for a in slow.at("slow"))
        assert fast_done < first_slow_answer, "the fast endpoint waited for the slow one"
        await wait_until(lambda: len(slow.at("slow")) == 4 and slow.busy == 0, 3 * SLOW_SECONDS)
        await wait_until(lambda: worker.webhooks.in_flight == 0, 5)
    finally:
        await worker.stop()

    assert slow.peak == 2  # never more than the per-endpoint limit at once
    arrivals = fast.at("fast") + slow.at("slow")
    assert len(arrivals) == 8
    # Each one verifies with its timestamp of the moment it left, including those the slow
    # receiver got 3 s after the first two.
    assert [a.name for a in arrivals if not signed_on_arrival(a)] == []
    late = sorted(slow.at("slow"), key=lambda a: a.arrived)[2:]
    assert all(a.arrived >= first_slow_answer for a in late)
    for admin, hook in ((slow_admin, slow_hook), (fast_admin, fast_hook)):
        log = await log_of(client, admin, hook)
        assert [(d["status"], d["attempts"], len(d["attempts_log"])) for d in log] == [
            ("sent", 1, 1)
        ] * 4


async def test_every_attempt_is_kept_in_the_delivery_log(
    app, client, caller, events, network, fast: Receiver
) -> None:
    admin = caller("admin")
    hook = await register(client, admin, fast, "flaky")
    fast.plans["flaky"] = [(429, {"Retry-After": "1"})]
    await open_case(events, admin.org_id, "LOG-1")
    worker = app.state.worker
    assert await worker.run_once() == 1
    await asyncio.sleep(1.1)  # the receiver asked for a second
    assert await worker.run_once() == 1

    (delivery,) = await log_of(client, admin, hook)
    assert (delivery["status"], delivery["attempts"], delivery["response_code"]) == (
        "sent",
        2,
        200,
    )
    first, second = delivery["attempts_log"]
    assert (first["number"], first["response_code"], first["error"]) == (1, 429, "HTTP 429")
    assert (second["number"], second["response_code"], second["error"]) == (2, 200, None)
    sent = [datetime.fromisoformat(a["attempted_at"]) for a in (first, second)]
    assert sent[0] < sent[1] <= datetime.now(UTC)
    assert [int(a.headers["webhook-timestamp"]) for a in fast.at("flaky")] == [
        int(moment.timestamp()) for moment in sent
    ]
    assert all(a["latency_ms"] is not None for a in (first, second))
    assert all(signed_on_arrival(a) for a in fast.at("flaky"))


async def test_bulk_replay_sends_a_delivery_waiting_to_retry(
    app, client, caller, events, network, fast: Receiver
) -> None:
    admin = caller("admin")
    hook = await register(client, admin, fast, "later")
    since = datetime.now(UTC).isoformat()
    worker = app.state.worker
    fast.plans["later"] = [(429, {"Retry-After": "3600"})]
    await open_case(events, admin.org_id, "WAIT-1")
    assert await worker.run_once() == 1
    await open_case(events, admin.org_id, "SENT-1")
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # the first waits an hour for its retry
    statuses = {d["status"] for d in await log_of(client, admin, hook)}
    assert statuses == {"failed", "sent"}

    replayed = await client.post(
        f"{PATH}/{hook['id']}/replay", json={"since": since}, headers=admin.headers
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"replayed": 1}  # the waiting one; not the one that got through
    assert await worker.run_once() == 1

    log = {d["message_id"]: d for d in await log_of(client, admin, hook)}
    waited = log[fast.at("later")[0].headers["webhook-id"]]
    assert waited["status"] == "sent"
    assert [a["response_code"] for a in waited["attempts_log"]] == [429, 200]
    assert [a.headers["webhook-id"] for a in fast.at("later")].count(waited["message_id"]) == 2
    assert all(signed_on_arrival(a) for a in fast.at("later"))
