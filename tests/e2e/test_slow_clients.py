"""Slow clients cannot switch reporting off: the platform as real processes on free ports,
attacked over real sockets by connections that send half a report and stall.

While 280 such connections from twelve addresses are open (240 of them held: more than the
proxy's 200 connections to intake), a reporter at another address (127.0.0.2: any 127/8
address is loopback, so it is a different source) files a report, reads the public form and
sees `/healthz` 200 within a few seconds; each stalled request is cut with a 408 when its body
deadline passes; a source holding its cap of requests gets 429 at once for more; a body
trickling in below the minimum rate is cut too; and the services behind the gateway cut a
stalled body themselves.

The attack runs once per module (bounded: a fixed number of sockets, every wait has a
timeout, every socket is closed at the end) and each test checks one thing it showed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from launcher import APPS, HOST, Platform, free_port, missing_apps, quiet_sink

pytestmark = pytest.mark.processes

BODY_TIMEOUT = 8.0  # seconds a body may take (UPSTANDER_REQUEST_BODY_TIMEOUT_SECONDS)
MIN_RATE = 100  # bytes per second beyond it (UPSTANDER_REQUEST_BODY_MIN_BYTES_PER_SECOND)
PER_SOURCE = 20  # requests with a body still arriving per address (gateway)
# Two addresses open twice their cap (20 held, 20 refused each); ten more open their cap.
GREEDY = {"127.0.0.1": 2 * PER_SOURCE, "127.0.0.3": 2 * PER_SOURCE}
ATTACKERS = {**GREEDY, **{f"127.0.1.{n}": PER_SOURCE for n in range(1, 11)}}
REPORTER = "127.0.0.2"
TRICKLER = "127.0.0.4"
REPORT = json.dumps(
    {
        "org": "demo",
        "mode": "anonymous",
        "description": "A report that never finishes arriving, sent to hold a connection. " * 4,
        "categories": ["sexual_harassment"],
    }
).encode()
# Slack on top of the deadline for a loaded machine (2 cores shared by many).
SLACK = 6.0


@pytest.fixture(scope="module")
def platform(test_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if test_backend != "sqlite":
        pytest.skip("about the servers, not the database: runs in the SQLite pass only")
    missing = missing_apps()
    if missing:
        pytest.skip("no runnable `python -m upstander.<app>` for: " + ", ".join(missing))
    running = Platform(
        var_dir=tmp_path_factory.mktemp("slow-clients"),
        ports={name: free_port() for name in APPS},
        sink=quiet_sink,
        extra_env={
            "UPSTANDER_REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
            "UPSTANDER_REQUEST_BODY_MIN_BYTES_PER_SECOND": str(MIN_RATE),
            "UPSTANDER_SLOW_REQUESTS_PER_SOURCE": str(PER_SOURCE),
        },
    )
    with running:
        yield running


@dataclass
class Answer:
    """What a raw connection got back: the status (None: closed without one), when, and
    whether the server closed the connection afterwards."""

    status: int | None
    after: float
    closed: bool
    body: bytes = b""

    def problem_type(self) -> str:
        return str(json.loads(self.body).get("type", "")) if self.body else ""


def _request_head(port: int, path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n"
        "\r\n"
    ).encode()


async def _read_answer(reader: asyncio.StreamReader, opened: float, timeout: float) -> Answer:
    """Read until the server closes the connection (or `timeout`): status line and body."""
    data = b""
    closed = False
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
    except TimeoutError:
        pass
    except ConnectionError:
        closed = True
    after = time.monotonic() - opened
    if not data.startswith(b"HTTP/1."):
        return Answer(None, after, closed)
    head, _, body = data.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), after, closed, body)


async def _stall(source: str, port: int, path: str, timeout: float) -> Answer:
    """Send the headers and half of a report, then nothing; return what comes back."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    opened = time.monotonic()
    try:
        writer.write(_request_head(port, path, len(REPORT)) + REPORT[: len(REPORT) // 2])
        await writer.drain()
        return await _read_answer(reader, opened, timeout)
    finally:
        writer.close()


async def _trickle(source: str, port: int, timeout: float) -> Answer:
    """Send a report one byte every 0.2 s (5 B/s, under the minimum rate) until answered."""
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    opened = time.monotonic()

    async def drip() -> None:
        writer.write(_request_head(port, "/intake/v1/reports", len(REPORT)))
        for byte in REPORT:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.2)

    dripping = asyncio.ensure_future(drip())
    try:
        return await _read_answer(reader, opened, timeout)
    finally:
        dripping.cancel()
        writer.close()


@dataclass
class Outcome:
    by_attacker: dict[str, list[Answer]] = field(default_factory=dict)
    reporter: dict[str, tuple[int, float]] = field(default_factory=dict)
    trickle: Answer | None = None
    direct: dict[str, Answer] = field(default_factory=dict)


async def _as_reporter(base_url: str) -> dict[str, tuple[int, float]]:
    """The reporter's calls from another address, all at once: status and seconds for each."""
    seen: dict[str, tuple[int, float]] = {}
    transport = httpx.AsyncHTTPTransport(local_address=REPORTER)
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30) as client:
        calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "healthz": lambda: client.get("/healthz"),
            "form": lambda: client.get("/intake/v1/forms/demo"),
            "report": lambda: client.post(
                "/intake/v1/reports", content=REPORT, headers={"content-type": "application/json"}
            ),
        }

        async def timed(name: str) -> None:
            started = time.monotonic()
            response = await calls[name]()
            seen[name] = (response.status_code, time.monotonic() - started)

        await asyncio.gather(*(timed(name) for name in calls))
    return seen


async def _form_is_ready(base_url: str) -> None:
    """Intake learns the demo organisation from the gateway's events: wait for its form."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        for _ in range(150):
            if (await client.get("/intake/v1/forms/demo")).status_code == 200:
                return
            await asyncio.sleep(0.2)
    raise AssertionError("intake never learned the demo organisation")


@pytest.fixture(scope="module")
async def outcome(platform: Platform) -> AsyncIterator[Outcome]:
    gateway = platform.url("gateway")
    await _form_is_ready(gateway)
    port = platform.ports["gateway"]
    wait = BODY_TIMEOUT + SLACK
    stalls = {
        source: [
            asyncio.ensure_future(_stall(source, port, "/intake/v1/reports", wait))
            for _ in range(count)
        ]
        for source, count in ATTACKERS.items()
    }
    trickle = asyncio.ensure_future(_trickle(TRICKLER, port, wait + 4))
    direct = {
        "intake": asyncio.ensure_future(
            _stall("127.0.0.5", platform.ports["intake"], "/intake/v1/reports", wait)
        ),
        "cases": asyncio.ensure_future(
            _stall(
                "127.0.0.5",
                platform.ports["cases"],
                "/cases/v1/cases/00000000-0000-0000-0000-000000000000/messages",
                wait,
            )
        ),
    }
    await asyncio.sleep(1.5)  # every stalled request is in and holding its connection
    result = Outcome()
    try:
        result.reporter = await _as_reporter(gateway)
    finally:
        for source, tasks in stalls.items():
            result.by_attacker[source] = list(await asyncio.gather(*tasks))
        result.trickle = await trickle
        result.direct = {name: await task for name, task in direct.items()}
    yield result


def test_a_report_from_another_address_is_accepted_within_seconds(outcome: Outcome) -> None:
    status, seconds = outcome.reporter["report"]

    assert status == 201
    assert seconds < 5


def test_healthz_and_the_public_form_answer_within_seconds(outcome: Outcome) -> None:
    assert outcome.reporter["healthz"][0] == 200
    assert outcome.reporter["form"][0] == 200
    assert max(outcome.reporter["healthz"][1], outcome.reporter["form"][1]) < 5


def test_the_reporter_was_served_while_the_stalled_requests_were_still_open(
    outcome: Outcome,
) -> None:
    cut = [a.after for answers in outcome.by_attacker.values() for a in answers if a.status == 408]

    assert cut, "no stalled request was cut"
    assert max(seconds for _, seconds in outcome.reporter.values()) + 1.5 < min(cut)


def test_stalled_requests_are_cut_with_a_408_when_their_deadline_passes(outcome: Outcome) -> None:
    for answers in outcome.by_attacker.values():
        cut = [a for a in answers if a.status == 408]

        assert len(cut) == PER_SOURCE
        # From the request's start: the timeout, plus a second per MIN_RATE bytes received.
        assert all(BODY_TIMEOUT - 0.5 <= a.after <= BODY_TIMEOUT + SLACK for a in cut)
        assert all(a.closed for a in cut)
        assert {a.problem_type() for a in cut} == {"https://upstander.dev/problems/request-timeout"}


def test_a_source_beyond_its_cap_gets_429_at_once(outcome: Outcome) -> None:
    for source in GREEDY:
        refused = [a for a in outcome.by_attacker[source] if a.status == 429]

        assert len(refused) == GREEDY[source] - PER_SOURCE
        assert all(a.after < BODY_TIMEOUT / 2 and a.closed for a in refused)
        assert {a.problem_type() for a in refused} == {
            "https://upstander.dev/problems/rate-limited"
        }


def test_a_body_trickling_below_the_minimum_rate_is_cut(outcome: Outcome) -> None:
    assert outcome.trickle is not None
    assert outcome.trickle.status == 408
    assert outcome.trickle.after <= BODY_TIMEOUT + SLACK


def test_each_service_cuts_a_stalled_body_itself(outcome: Outcome) -> None:
    assert {name: answer.status for name, answer in outcome.direct.items()} == {
        "intake": 408,
        "cases": 408,
    }
    assert all(answer.after <= BODY_TIMEOUT + SLACK for answer in outcome.direct.values())
