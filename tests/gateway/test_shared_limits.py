"""Two gateway replicas sharing their rate limits in Redis (`UPSTANDER_RATE_LIMIT_STORE=redis`):
a limit of N a minute allows N across both, not 2N; the receipt limiter keeps its semantics
across replicas (docs/threat-model.md, "Receipt codes"); with Redis down ordinary requests are
still served and receipt guessing is still limited, per process.

The module starts its own `redis-server` on a free port (nothing on disk), emptied before each
test. The replicas are two in-process apps on one SQLite file; time moves on one injectable
clock they share, an hour between tests."""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from launcher import free_port
from pydantic import BaseModel

from upstander.gateway.app import create_app
from upstander.gateway.edge import ReceiptLimiter, SlidingWindowLimiter
from upstander.gateway.edge.limitstore import (
    ReceiptLimits,
    RedisLimitStore,
    WindowLimit,
    shared_hash_key,
)
from upstander.gateway.settings import Settings
from upstander.kit.clock import FrozenClock
from upstander.kit.testing import RoutingTransport

RIGHT_CODE = "K7QW2-9XMDA-4RT8C-JH3PZ"
REPORT_ID = uuid.uuid4()
ORG_ID = uuid.uuid4()
PER_MINUTE = 6  # the /auth/* per-source limit in these tests
ACCOUNT_PER_MINUTE = 4
BURST, RECEIPT_PER_MINUTE, CEILING, SUSPECT = 5, 5.0, 30, 3


# -- a Redis server of our own ------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
        pytest.skip("redis-server is not installed")
    server = RedisServer(port=free_port(), folder=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the test's Redis, emptied first (a test that stopped the server gets it
    back, and the replicas' stores are past their wait before trying it again)."""
    if redis_server.process is None:
        redis_server.start()
        await asyncio.sleep(0.3)  # > rate_limit_store_retry_seconds
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


# -- two replicas ---------------------------------------------------------------------------------


class VerifyIn(BaseModel):
    org: str
    receipt_code: str


@dataclass
class FakeIntake:
    """Intake's receipt check: the right code opens a report of `demo`; counts the checks."""

    checks: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/intake/internal/receipts/verify")
        async def verify(body: VerifyIn) -> JSONResponse:
            self.checks.append(body.org)
            if body.org == "demo" and body.receipt_code == RIGHT_CODE:
                return JSONResponse({"report_id": str(REPORT_ID), "org_id": str(ORG_ID)})
            return JSONResponse({"status": 404}, status_code=404)

        return app


@dataclass
class Replicas:
    apps: list[FastAPI]
    clock: FrozenClock
    intake: FakeIntake

    async def post(self, replica: int, ip: str, path: str, **kwargs: object) -> httpx.Response:
        transport = httpx.ASGITransport(
            self.apps[replica], client=(ip, 40000), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.post(path, **kwargs)  # type: ignore[arg-type]

    async def get(self, replica: int, ip: str, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(self.apps[replica], client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.get(path)

    async def exchange(self, replica: int, ip: str, code: str) -> httpx.Response:
        return await self.post(
            replica, ip, "/auth/receipt", json={"org": "demo", "receipt_code": code}
        )

    async def sign_in(self, replica: int, ip: str, username: str) -> httpx.Response:
        return await self.post(
            replica,
            ip,
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "wrong"},
        )


def _settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "log_json": False,
        "relay_background": False,
        "auth_rate_limit_per_minute": PER_MINUTE,
        "auth_account_rate_limit_per_minute": ACCOUNT_PER_MINUTE,
        "receipt_source_burst": BURST,
        "receipt_source_per_minute": RECEIPT_PER_MINUTE,
        "receipt_org_failures_per_minute": CEILING,
        "receipt_suspect_failures": SUSPECT,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One SQLite file for both replicas (the gateway migrates it on start), as replicas share
    # one database.
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('replicas') / 'gateway.db'}"


async def _replicas(stack: AsyncExitStack, database_url: str, **overrides: object) -> Replicas:
    intake = FakeIntake()
    clock = FrozenClock()
    apps = []
    for _ in range(2):
        settings = _settings(database_url, **overrides)
        transport = RoutingTransport({settings.intake_url: intake.app()})
        app = create_app(settings, transport=transport, clock=clock)
        await stack.enter_async_context(
            LifespanManager(app, startup_timeout=60, shutdown_timeout=30)
        )
        apps.append(app)
    return Replicas(apps, clock, intake)


async def _shared_replicas(
    stack: AsyncExitStack, redis_server: RedisServer, database_url: str, **overrides: object
) -> Replicas:
    return await _replicas(
        stack,
        database_url,
        rate_limit_store="redis",
        redis_url=redis_server.url,
        rate_limit_key_prefix=f"test:{uuid.uuid4().hex}",
        rate_limit_store_retry_seconds=0.2,
        **overrides,
    )


@pytest.fixture(scope="module")
async def shared_replicas(redis_server: RedisServer, database_url: str) -> AsyncIterator[Replicas]:
    async with AsyncExitStack() as stack:
        yield await _shared_replicas(stack, redis_server, database_url)


@pytest.fixture(scope="module")
async def receipt_replicas(redis_server: RedisServer, database_url: str) -> AsyncIterator[Replicas]:
    async with AsyncExitStack() as stack:
        yield await _shared_replicas(
            stack, redis_server, database_url, auth_rate_limit_per_minute=100_000
        )


def _fresh(replicas: Replicas) -> Replicas:
    # Redis was emptied (`redis_client`); an hour on, every in-memory limiter has forgotten too.
    replicas.clock.advance(timedelta(hours=1))
    replicas.intake.checks.clear()
    return replicas


@pytest.fixture
def shared(shared_replicas: Replicas, redis_client: aioredis.Redis) -> Replicas:
    """Two replicas sharing Redis, with the limits of these tests."""
    return _fresh(shared_replicas)


@pytest.fixture
def receipts(receipt_replicas: Replicas, redis_client: aioredis.Redis) -> Replicas:
    """Two replicas sharing Redis whose `/auth/*` per-source limit is out of the way: only the
    receipt limiter refuses."""
    return _fresh(receipt_replicas)


def _wrong(n: int) -> str:
    return f"AAAAA-BBBBB-CCCCC-{n:05d}"


# -- ordinary limits ----------------------------------------------------------------------------


async def test_a_limit_of_n_a_minute_allows_n_in_total_across_two_replicas(shared: Replicas):
    statuses = [
        (await shared.post(attempt % 2, "203.0.113.5", "/auth/token")).status_code
        for attempt in range(2 * PER_MINUTE)
    ]
    elsewhere = await shared.post(1, "198.51.100.5", "/auth/token")
    shared.clock.advance(timedelta(seconds=61))
    later = await shared.post(0, "203.0.113.5", "/auth/token")

    allowed = [status for status in statuses if status != 429]
    assert len(allowed) == PER_MINUTE
    assert statuses[PER_MINUTE:] == [429] * PER_MINUTE
    assert elsewhere.status_code != 429
    assert later.status_code != 429


async def test_a_per_account_limit_counts_sign_ins_on_both_replicas_together(shared: Replicas):
    # Each attempt from a new address: only the per-account limit can refuse.
    statuses = [
        (await shared.sign_in(n % 2, f"10.1.0.{n + 1}", "admin@demo.example")).status_code
        for n in range(2 * ACCOUNT_PER_MINUTE)
    ]

    assert statuses[:ACCOUNT_PER_MINUTE] == [400] * ACCOUNT_PER_MINUTE  # invalid_grant
    assert statuses[ACCOUNT_PER_MINUTE:] == [429] * ACCOUNT_PER_MINUTE


async def test_with_the_memory_store_each_replica_counts_alone(database_url: str):
    # The problem the shared store solves: two replicas in memory allow 2N.
    async with AsyncExitStack() as stack:
        replicas = await _replicas(stack, database_url)
        statuses = [
            (await replicas.post(attempt % 2, "203.0.113.6", "/auth/token")).status_code
            for attempt in range(2 * PER_MINUTE)
        ]

    assert 429 not in statuses


# -- receipt codes ------------------------------------------------------------------------------


async def test_a_guesser_spreading_over_two_replicas_is_limited_once(receipts: Replicas):
    shared = receipts
    statuses = [
        (await shared.exchange(n % 2, "203.0.113.66", _wrong(n))).status_code for n in range(12)
    ]
    refused = await shared.exchange(1, "203.0.113.66", _wrong(99))

    assert statuses == [401] * BURST + [429] * (12 - BURST)
    assert len(shared.intake.checks) == BURST  # refused guesses never reach intake
    assert 1 <= int(refused.headers["retry-after"]) <= 60 / RECEIPT_PER_MINUTE


async def test_a_reporter_with_the_right_code_gets_in_on_either_replica_during_an_attack(
    receipts: Replicas,
):
    shared = receipts
    for bot in range(40):  # 40 addresses, a few wrong codes each, on both replicas
        for attempt in range(SUSPECT):
            await shared.exchange((bot + attempt) % 2, f"10.9.{bot}.1", _wrong(attempt))
        shared.clock.advance(timedelta(milliseconds=50))
    suspect = await shared.exchange(0, "10.9.0.1", _wrong(77))  # failed 3 times already
    org_key = shared.apps[0].state.receipt_limits.key("demo")
    org_failures = await shared.apps[1].state.receipt_limits.org_failures(org_key)

    typo = await shared.exchange(0, "198.51.100.22", RIGHT_CODE[:-1] + "Q")
    right_after_typo = await shared.exchange(1, "198.51.100.22", RIGHT_CODE)
    reporter = await shared.exchange(1, "198.51.100.21", RIGHT_CODE)

    assert org_failures == CEILING  # the organisation is over its ceiling on both
    assert suspect.status_code == 429
    assert int(suspect.headers["retry-after"]) <= 60  # never growing
    assert typo.status_code == 401
    assert right_after_typo.status_code == 200, right_after_typo.text
    assert reporter.status_code == 200, reporter.text


async def test_the_shared_receipt_limiter_answers_exactly_as_the_in_memory_one(
    redis_client: aioredis.Redis, redis_server: RedisServer
):
    """The same random trace of begins, failures, successes and abandons, with time moving,
    through the in-memory `ReceiptLimiter` and the Redis store used from two replicas: every
    answer is the same."""
    clock = FrozenClock()
    options = {
        "burst": BURST,
        "per_minute": RECEIPT_PER_MINUTE,
        "org_failures_per_minute": 8,
        "suspect_failures": SUSPECT,
        "failure_memory_seconds": 120,
    }
    memory = ReceiptLimiter(clock=clock, **options)  # type: ignore[arg-type]
    store = RedisLimitStore(redis_server.url, hash_key=b"k" * 32, prefix=f"test:{uuid.uuid4().hex}")
    replicas = [
        ReceiptLimits(ReceiptLimiter(clock=clock, **options), store)  # type: ignore[arg-type]
        for _ in range(2)
    ]
    rng = random.Random(13)
    sources = [f"source-{n}" for n in range(12)]
    orgs = ["org-a", "org-b"]
    expected: list[object] = []
    got: list[object] = []
    try:
        for step in range(1500):
            source, org = rng.choice(sources), rng.choice(orgs)
            shared = replicas[step % 2]
            expected.append(memory.begin(source, org))
            got.append(await shared.begin(source, org))
            if expected[-1] is None:
                outcome = rng.choices(["failed", "succeeded", "abandoned"], [6, 2, 1])[0]
                if outcome == "failed":
                    memory.failed(source, org)
                    await replicas[rng.randrange(2)].failed(source, org)
                else:
                    getattr(memory, outcome)(source)
                    await getattr(replicas[rng.randrange(2)], outcome)(source)
            if step % 25 == 0:
                expected.append(memory.org_failures(org))
                got.append(await shared.org_failures(org))
            clock.advance(timedelta(seconds=rng.choice([0, 0.1, 0.5, 2, 7, 13, 61])))
    finally:
        await store.aclose()

    assert got == expected
    assert expected.count(None) > 200 and any(isinstance(v, int) and v > 12 for v in expected)


async def test_the_shared_window_answers_exactly_as_the_in_memory_one(
    redis_server: RedisServer,
):
    clock = FrozenClock()
    memory = SlidingWindowLimiter(3, 60, clock=clock)
    store = RedisLimitStore(redis_server.url, hash_key=b"k" * 32, prefix=f"t:{uuid.uuid4().hex}")
    shared = [WindowLimit("w", SlidingWindowLimiter(3, 60, clock=clock), store) for _ in range(2)]
    rng = random.Random(7)
    expected, got = [], []
    try:
        for step in range(600):
            key = rng.choice(["a", "b", "c"])
            expected.append(memory.hit(key))
            got.append(await shared[step % 2].hit(key))
            clock.advance(timedelta(seconds=rng.choice([0, 1, 5, 20, 59, 61])))
    finally:
        await store.aclose()

    assert got == expected
    assert any(answer is not None for answer in expected)


async def test_redis_holds_only_keyed_hashes_and_every_key_expires(
    shared: Replicas, redis_client: aioredis.Redis
):
    await shared.exchange(0, "203.0.113.99", _wrong(1))
    await shared.sign_in(1, "203.0.113.99", "admin@demo.example")
    prefix = shared.apps[0].state.limit_store.prefix

    keys = [key async for key in redis_client.scan_iter(match=prefix + ":*")]
    ttls = [await redis_client.pttl(key) for key in keys]

    assert len(keys) >= 5  # source window, account window, receipt bucket/failures/org
    assert all(0 < ttl <= (900 + 5) * 1000 for ttl in ttls), dict(zip(keys, ttls, strict=True))
    joined = " ".join(keys)
    assert "203.0.113.99" not in joined and "admin" not in joined and "demo" not in joined
    # Both replicas name the same source alike (the hash key comes from the shared KEK).
    assert shared.apps[0].state.receipt_limits.key("x") == shared.apps[1].state.receipt_limits.key(
        "x"
    )
    assert shared_hash_key("a") != shared_hash_key("b")


# -- Redis down ---------------------------------------------------------------------------------


async def test_with_redis_down_ordinary_requests_are_served_and_receipt_guessing_still_limited(
    shared: Replicas, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
):
    redis_server.stop()
    caplog.set_level(logging.WARNING, logger="upstander.gateway.ratelimit")

    started = time.monotonic()
    sign_ins = [
        (await shared.post(n % 2, "203.0.113.7", "/auth/token")).status_code
        for n in range(3 * PER_MINUTE)
    ]
    elapsed = time.monotonic() - started
    health = await shared.get(0, "203.0.113.7", "/.well-known/jwks.json")
    guesses = [(await shared.exchange(0, "203.0.113.8", _wrong(n))).status_code for n in range(8)]
    reporter = await shared.exchange(1, "198.51.100.30", RIGHT_CODE)

    assert 429 not in sign_ins  # failing open: Redis being down must not stop sign-ins
    assert elapsed < 10  # no request waits long for a dead Redis
    assert health.status_code == 200
    assert guesses == [401] * BURST + [429] * 3  # this replica's memory limits guessing
    assert reporter.status_code == 200, reporter.text
    warnings = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert warnings  # said so, once per replica and outage, without any address or key
    assert len(warnings) <= 2
    assert not any("203.0.113" in message or "redis://" in message for message in warnings)


async def test_limits_are_shared_again_once_redis_is_back(
    shared: Replicas, redis_server: RedisServer
):
    redis_server.stop()
    during = [(await shared.post(0, "203.0.113.9", "/auth/token")).status_code for _ in range(2)]
    redis_server.start()
    await asyncio.sleep(0.3)  # past rate_limit_store_retry_seconds

    statuses = [
        (await shared.post(attempt % 2, "203.0.113.9", "/auth/token")).status_code
        for attempt in range(2 * PER_MINUTE)
    ]

    assert 429 not in during
    assert statuses.count(429) == PER_MINUTE
