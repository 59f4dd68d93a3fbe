"""Two processes per service on PostgreSQL + NATS, a 1,000-report flood, and a replica of
intake and one of cases killed with SIGKILL in the middle of it: no report is lost, none is
opened twice, and every case exists within 10 s of the flood's end.

What runs: the gateway, intake ×2 and cases ×2 as real processes (`python -m
upstander.<app>`, started by scripts/launcher.py as `make run` starts them) on empty
PostgreSQL databases of this run, with events on a private nats-server (its own port and
store, tests/nats_support.py). The gateway reaches intake through a round-robin TCP balancer
(the role a Kubernetes Service plays), so both intake replicas take reports. training and
notify are not on the report → case path and are not started.

The flood: 1,000 identified reports (a staff token, so no receipt-code scrypt per report)
posted concurrently through the gateway. A submission that fails while its replica is killed
(a 502 or a broken connection) is posted again, as a client would; it may have been stored
anyway, which is why the checks compare the databases, not the client's tally: every report
intake holds has exactly one case, the flood's 1,000 included; cases' inbox holds each report
event once, processed; nothing is dead or left pending in either outbox.

Slow (about a minute) and needing PostgreSQL and nats-server: marked `flood`, deselected by
default (pyproject addopts), run by `.ci/run` (`pytest -m flood`, PostgreSQL backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import helpers
import httpx
import pytest
from launcher import Platform, free_port, missing_apps, quiet_sink
from nats_support import NatsServer, private_nats_server
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.flood

REPORTS = 1000
CONCURRENCY = 32
# The kills happen once this many reports were accepted: well inside the flood.
KILL_AFTER = 300
# Every case must exist this long after the flood's last report was accepted.
OPEN_WITHIN = 10.0
# How long after the flood the test waits for the last case before judging (lost or late).
SETTLE = 90.0
ORG = "demo"
ADMIN = "admin@demo.example"
PASSWORD = "upstander-demo"
ALL_APPS = ("gateway", "intake", "cases", "training", "notify")


# ----------------------------------------------------------------------------- a balancer


class Balancer:
    """A round-robin TCP balancer on 127.0.0.1, in a thread of its own: each connection goes
    to the next backend that accepts it (a dead replica is skipped)."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self._next = itertools.count()
        self.connections = dict.fromkeys(backends, 0)  # port → connections it took
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="balancer", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the balancer did not start")

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, backlog=1024)
        self._ready.set()
        async with server:
            await self._stopping.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        start = next(self._next)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for offset in range(len(self.backends)):
            port = self.backends[(start + offset) % len(self.backends)]
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection("127.0.0.1", port)
                self.connections[port] += 1
                break
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                sink.close()


# ----------------------------------------------------------------------------- the platform


@dataclass
class Replicas:
    """Platform `first` (gateway, intake, cases) and `second` (intake, cases): one process
    per app in each, on the same databases, broker and balancer."""

    first: Platform
    second: Platform
    balancer: Balancer
    databases: dict[str, str]

    @property
    def gateway(self) -> str:
        return self.first.url("gateway")


def _plain(url: str) -> str:
    """The asyncpg form of a `postgresql+asyncpg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with private_nats_server(tmp_path_factory.mktemp("flood-nats")) as server:
        yield server


@pytest.fixture(scope="module")
async def databases(test_backend: str) -> AsyncIterator[dict[str, str]]:
    if test_backend != "postgresql":
        pytest.skip("replicas share PostgreSQL: run with UPSTANDER_TEST_BACKEND=postgresql")
    missing = missing_apps()
    if missing:
        pytest.skip("no runnable app yet for: " + ", ".join(missing))
    # Empty databases of this run; the first replica of each app migrates its own on start.
    urls = {name: await helpers.fresh_pg_database(f"flood_{name}") for name in ALL_APPS[:3]}
    yield urls
    for url in urls.values():
        await helpers.drop_pg_database(url)


def _wait_ready(platform: Platform, name: str, timeout: float = 90.0) -> None:
    """The app's own /readyz (its database answers) says 200; fail early if it died."""
    url = platform.url(name) + "/readyz"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            child = platform.children[name]
            if child.process.poll() is not None:
                tail = "\n".join(list(child.recent)[-20:])
                raise AssertionError(f"{name} exited with {child.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.2)
    raise AssertionError(f"{name} not ready after {timeout:.0f} s")


@pytest.fixture(scope="module")
def replicas(
    databases: dict[str, str],
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    first_ports = {name: free_port() for name in ALL_APPS}
    second_ports = {**first_ports, "intake": free_port(), "cases": free_port()}
    balancer = Balancer([first_ports["intake"], second_ports["intake"]])
    balancer.start()
    environment = {
        "UPSTANDER_EVENT_TRANSPORT": "nats",
        "UPSTANDER_NATS_URL": nats_server.url,
        # The deployment meant for floods (docs/deploy.md, "How each app scales"): one
        # opening in flight per lane, so the lanes are how many cases open at once across
        # the replicas. With the default 4, openings (about 60 a second) fall behind a flood
        # that intake now takes at 100-125 reports a second.
        "UPSTANDER_NATS_PARTITIONS": "8",
        # Whoever calls intake (the gateway) goes through the balancer.
        "UPSTANDER_INTAKE_URL": balancer.url,
        "UPSTANDER_CASES_URL": f"http://127.0.0.1:{first_ports['cases']}",
        "UPSTANDER_LOG_LEVEL": "WARNING",
        # The flood comes from one address; limits have their own tests.
        "UPSTANDER_AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        "UPSTANDER_AUTH_ACCOUNT_RATE_LIMIT_PER_MINUTE": "100000",
    }
    var = tmp_path_factory.mktemp("flood-var")
    first = Platform(
        var_dir=var,
        ports=first_ports,
        database_urls=databases,
        apps=("intake", "cases", "gateway"),
        extra_env=environment,
        sink=quiet_sink,
    )
    second = Platform(
        var_dir=var,
        ports=second_ports,
        database_urls=databases,
        apps=("intake", "cases"),
        extra_env=environment,
        sink=quiet_sink,
    )
    running = Replicas(first, second, balancer, databases)
    try:
        # One after the other: the first migrates the databases, the second finds them at head.
        # (Not `with first`: that waits for the gateway's aggregate /healthz, which wants
        # training and notify too.)
        for platform in (first, second):
            platform.start()
            for name in platform.apps:
                _wait_ready(platform, name)
        yield running
    finally:
        second.stop()
        first.stop()
        balancer.stop()


# ----------------------------------------------------------------------------- the flood


@dataclass
class Flood:
    accepted: dict[str, float] = field(default_factory=dict)  # report id → monotonic time
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # what failed → how often
    started: float = 0.0
    ended: float = 0.0


async def _token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": PASSWORD, "org": ORG},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _report(index: int) -> dict[str, object]:
    return {
        "org": ORG,
        "mode": "identified",
        "description": f"Flood report {index}: shouted at during the volunteer briefing.",
        "categories": ["sexual_harassment"],
    }


async def _wait_for_intake(replicas: Replicas, timeout: float = 60.0) -> None:
    """Both intake replicas know the organisation and its people (projected from the
    gateway's events, over NATS): an identified report can be filed on each."""
    ports = [replicas.first.ports["intake"], replicas.second.ports["intake"]]
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        for port in ports:
            while True:
                form = await client.get(f"http://127.0.0.1:{port}/intake/v1/forms/{ORG}")
                if form.status_code == 200:
                    break
                assert time.monotonic() < deadline, f"intake :{port} never knew {ORG}: {form.text}"
                await asyncio.sleep(0.2)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_report(replicas: Replicas) -> str:
    """Seconds of CPU each running process used (a diagnostic for slow machines)."""
    used = []
    for label, platform in (("1", replicas.first), ("2", replicas.second)):
        for name, child in platform.children.items():
            used.append(f"{name}{label}={_cpu_seconds(child.process.pid):.1f}")
    return "cpu s: " + " ".join(used)


def _kill(platform: Platform, name: str) -> int:
    child = platform.children[name]
    child.process.kill()  # SIGKILL: no shutdown hook runs, nothing is released
    child.process.wait(timeout=10)
    return child.process.pid


async def _flood(replicas: Replicas, token: str) -> tuple[Flood, list[str]]:
    flood = Flood()
    killed: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    kill_now = asyncio.Event()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"authorization": f"Bearer {token}"}

    async def submit(client: httpx.AsyncClient, index: int) -> None:
        async with gate:
            for attempt in itertools.count():
                assert attempt < 20, f"report {index} was never accepted: {flood.failures}"
                try:
                    response = await client.post(
                        "/intake/v1/reports", json=_report(index), headers=headers
                    )
                except httpx.HTTPError as error:
                    what = type(error).__name__
                else:
                    if response.status_code == 201:
                        flood.accepted[response.json()["report_id"]] = time.monotonic()
                        if len(flood.accepted) >= KILL_AFTER:
                            kill_now.set()
                        return
                    # Only what a dying replica explains: anything else is a failure.
                    assert response.status_code in (502, 503, 504), response.text
                    what = f"HTTP {response.status_code}"
                flood.failures[what] = flood.failures.get(what, 0) + 1
                flood.retries += 1
                await asyncio.sleep(0.2)

    async def killer() -> None:
        await kill_now.wait()
        # One replica of each: intake's (with reports in flight and outbox rows claimed) and
        # cases' (with events in hand), then started again as a supervisor would.
        for name in ("intake", "cases"):
            _kill(replicas.second, name)
            killed.append(name)
        await asyncio.sleep(1.0)
        for name in ("intake", "cases"):
            replicas.second.start_app(name)

    async with httpx.AsyncClient(base_url=replicas.gateway, timeout=30, limits=limits) as client:
        flood.started = time.monotonic()
        killing = asyncio.create_task(killer())
        await asyncio.gather(*(submit(client, i) for i in range(REPORTS)))
        flood.ended = time.monotonic()
        await killing
    return flood, killed


# ----------------------------------------------------------------------------- the checks


async def _case_reports(connection: asyncpg.Connection) -> list[uuid.UUID]:
    return [r["report_id"] for r in await connection.fetch("SELECT report_id FROM cases")]


@dataclass
class Outcome:
    """What the flood left behind, read from both databases once every report has its case
    (or SETTLE after the flood, whichever comes first)."""

    flood: Flood
    seen: dict[uuid.UUID, float]  # report id → when its case was first seen (monotonic)
    opened: list[uuid.UUID]  # report id of every case, repeats included
    stored: set[uuid.UUID]  # every report intake holds
    outbox: dict[str, tuple[int, int]]  # intake's report events: status → (rows, event ids)
    inbox: dict[str, int]  # cases' report events: status → rows
    opened_events: int
    dead_case_events: int
    summary: str


@pytest.fixture(scope="module")
async def outcome(replicas: Replicas) -> Outcome:
    async with httpx.AsyncClient(base_url=replicas.gateway, timeout=10) as client:
        token = await _token(client)
    await _wait_for_intake(replicas)

    flood, killed = await _flood(replicas, token)
    assert killed == ["intake", "cases"]
    assert len(flood.accepted) == REPORTS

    intake = await asyncpg.connect(_plain(replicas.databases["intake"]))
    cases = await asyncpg.connect(_plain(replicas.databases["cases"]))
    try:
        # Watch the cases appear (each one's time to the poll, 0.2 s) until every report
        # intake stores has one and intake's outbox is empty, or SETTLE after the flood.
        seen: dict[uuid.UUID, float] = {}
        opened: list[uuid.UUID] = []
        stored: set[uuid.UUID] = set()
        at_the_end: int | None = None  # cases already open when the flood ended
        while True:
            now = time.monotonic()
            opened = await _case_reports(cases)
            if at_the_end is None:
                at_the_end = len(set(opened))
            for report_id in opened:
                seen.setdefault(report_id, now)
            stored = {r["id"] for r in await intake.fetch("SELECT id FROM reports")}
            pending = await intake.fetchval(
                "SELECT count(*) FROM outbox WHERE status <> 'delivered'"
            )
            if (stored <= set(opened) and not pending) or now > flood.ended + SETTLE:
                break
            await asyncio.sleep(0.2)
        outbox = await intake.fetch(
            "SELECT status, count(*) AS n, count(DISTINCT event_id) AS ids FROM outbox "
            "WHERE type = 'upstander.report.submitted' GROUP BY status"
        )
        inbox = await cases.fetch(
            "SELECT status, count(*) AS n FROM inbox "
            "WHERE type = 'upstander.report.submitted' GROUP BY status"
        )
        opened_events = await cases.fetchval(
            "SELECT count(*) FROM outbox WHERE type = 'upstander.case.opened'"
        )
        dead = await cases.fetchval("SELECT count(*) FROM outbox WHERE status = 'dead'")
    finally:
        await intake.close()
        await cases.close()
    summary = (
        f"flood of {REPORTS} reports: {flood.ended - flood.started:.1f} s, "
        f"{flood.retries} resubmissions {flood.failures}; {len(stored)} stored, "
        f"{len(set(opened))} cases ({at_the_end} when it ended); last case "
        f"{max(seen.values(), default=flood.ended) - flood.ended:+.1f} s after the flood "
        f"ended; {_cpu_report(replicas)}"
    )
    print("\n" + summary)
    return Outcome(
        flood=flood,
        seen=seen,
        opened=opened,
        stored=stored,
        outbox={r["status"]: (r["n"], r["ids"]) for r in outbox},
        inbox={r["status"]: r["n"] for r in inbox},
        opened_events=opened_events,
        dead_case_events=dead,
        summary=summary,
    )


async def test_a_flood_survives_killed_replicas_without_losing_or_repeating_a_case(
    replicas: Replicas, outcome: Outcome
) -> None:
    wanted = {uuid.UUID(r) for r in outcome.flood.accepted}
    stored, opened, summary = outcome.stored, outcome.opened, outcome.summary
    # 0 lost: every report intake holds (a report whose answer a kill cut off included) has a
    # case; 0 duplicated: exactly one.
    assert wanted <= stored, summary
    assert stored - set(opened) == set(), f"reports without a case: {summary}"
    assert len(opened) == len(set(opened)), f"a report opened two cases: {summary}"
    assert set(opened) <= stored, summary
    # Intake's outbox: every report event published once, nothing dead or pending.
    assert outcome.outbox == {"delivered": (len(stored), len(stored))}, summary
    # Cases' inbox: each report event once, processed (none dead); one case.opened each.
    assert outcome.inbox == {"processed": len(stored)}, summary
    assert outcome.opened_events == len(stored), summary
    assert outcome.dead_case_events == 0, summary
    # Both intake replicas took reports through the balancer.
    assert all(replicas.balancer.connections.values()), replicas.balancer.connections
    # The killed replicas came back and serve.
    for name in ("intake", "cases"):
        _wait_ready(replicas.second, name, timeout=60)


async def test_every_case_opens_within_10_s_of_the_floods_end(outcome: Outcome) -> None:
    wanted = {uuid.UUID(r) for r in outcome.flood.accepted}
    ended = outcome.flood.ended
    assert wanted <= set(outcome.seen), outcome.summary
    late = sorted(outcome.seen[r] - ended for r in wanted if outcome.seen[r] > ended + OPEN_WITHIN)
    assert not late, f"{len(late)} cases opened later than {OPEN_WITHIN:.0f} s: {outcome.summary}"
