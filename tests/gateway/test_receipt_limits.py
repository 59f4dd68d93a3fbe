"""Receipt-code exchanges under attack: a guessing source is held to its own budget, while a
reporter who holds the right code gets in at once, whatever others do to the organisation
(docs/threat-model.md, "Receipt codes"). Time moves on the injectable clock; nothing sleeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import helpers
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from upstander.gateway.app import create_app
from upstander.gateway.edge import ReceiptLimiter
from upstander.gateway.settings import Settings
from upstander.kit.clock import FrozenClock
from upstander.kit.testing import RoutingTransport

RIGHT_CODE = "K7QW2-9XMDA-4RT8C-JH3PZ"
REPORT_ID = uuid.uuid4()
ORG_ID = uuid.uuid4()
BURST, PER_MINUTE, CEILING, SUSPECT = 5, 5.0, 30, 3
REFILL_SECONDS = 60 / PER_MINUTE  # 12 s for one more attempt


# --- the limiter on its own ------------------------------------------------------------------


def _limiter(clock: FrozenClock, **overrides: float) -> ReceiptLimiter:
    options: dict[str, float] = {
        "burst": BURST,
        "per_minute": PER_MINUTE,
        "org_failures_per_minute": CEILING,
        "suspect_failures": SUSPECT,
        "failure_memory_seconds": 900,
        **overrides,
    }
    return ReceiptLimiter(clock=clock, **options)  # type: ignore[arg-type]


def _guess(limiter: ReceiptLimiter, source: str, org: str = "org") -> int | None:
    """One wrong code: refused (seconds to wait) or checked and failed (None)."""
    retry = limiter.begin(source, org)
    if retry is None:
        limiter.failed(source, org)
    return retry


def test_a_guessing_source_gets_its_budget_then_waits_one_refill_not_longer():
    clock = FrozenClock()
    limiter = _limiter(clock)

    assert [_guess(limiter, "attacker") for _ in range(BURST)] == [None] * BURST
    assert _guess(limiter, "attacker") == REFILL_SECONDS
    clock.advance(timedelta(seconds=REFILL_SECONDS))
    assert _guess(limiter, "attacker") is None
    assert _guess(limiter, "attacker") == REFILL_SECONDS


def test_thousands_of_failures_never_delay_a_source_that_has_not_failed():
    clock = FrozenClock()
    limiter = _limiter(clock)
    failures = 0
    for botnet in range(2000):  # 2,000 addresses, 3 wrong codes each
        for _ in range(SUSPECT):
            if _guess(limiter, f"bot-{botnet}") is None:
                failures += 1
        clock.advance(timedelta(milliseconds=10))

    assert failures >= 2000
    assert limiter.org_failures("org") == CEILING  # over the ceiling right now
    assert limiter.begin("reporter", "org") is None  # served at once
    limiter.succeeded("reporter")


def test_a_reporter_who_mistyped_once_is_served_while_the_org_is_over_its_ceiling():
    clock = FrozenClock()
    limiter = _limiter(clock)
    for bot in range(CEILING):
        _guess(limiter, f"bot-{bot}")

    assert _guess(limiter, "reporter") is None  # the typo: checked, failed
    assert limiter.begin("reporter", "org") is None  # the right code: checked at once
    limiter.succeeded("reporter")


def test_a_source_that_keeps_failing_waits_while_the_org_is_over_its_ceiling_at_most_a_minute():
    clock = FrozenClock()
    limiter = _limiter(clock)
    for _ in range(SUSPECT):
        _guess(limiter, "attacker")
    for bot in range(CEILING):
        _guess(limiter, f"bot-{bot}")

    waits = []
    for half_minute in range(240):  # two hours of the org being hammered
        waits.append(_guess(limiter, "attacker"))  # when let in (its failures aged), it fails
        for bot in range(CEILING):
            _guess(limiter, f"bot-{bot}-{half_minute}")
        clock.advance(timedelta(seconds=30))

    refused = [wait for wait in waits if wait is not None]
    assert len(refused) >= 200
    assert max(refused) <= 60  # never growing
    assert limiter.begin("newcomer", "org") is None  # and a clean source is still served


def test_an_organisation_calms_down_within_a_minute_of_the_last_failure():
    clock = FrozenClock()
    limiter = _limiter(clock)
    for _ in range(SUSPECT):
        _guess(limiter, "attacker")
    for bot in range(CEILING):
        _guess(limiter, f"bot-{bot}")
    assert limiter.begin("attacker", "org") == 60

    clock.advance(timedelta(seconds=61))

    assert limiter.begin("attacker", "org") is None  # only its own bucket is left


def test_a_right_code_gives_its_attempt_back_but_does_not_wash_away_failures():
    clock = FrozenClock()
    limiter = _limiter(clock)
    guesses_checked = 0
    for _ in range(4 * BURST):  # an attacker with a code of their own, alternating
        if limiter.begin("attacker", "org") is None:
            limiter.succeeded("attacker")
        if _guess(limiter, "attacker") is None:
            guesses_checked += 1

    assert guesses_checked == BURST
    assert len(limiter._sources["attacker"].failures) == BURST


def test_only_a_bounded_number_of_keys_is_held_in_memory():
    clock = FrozenClock()
    limiter = _limiter(clock, max_keys=100)
    for source in range(1000):
        _guess(limiter, f"source-{source}", org=f"org-{source}")

    assert len(limiter._sources) == 100
    assert len(limiter._orgs) == 100


# --- through the gateway ---------------------------------------------------------------------


class VerifyIn(BaseModel):
    org: str
    receipt_code: str


@dataclass
class FakeIntake:
    """Intake's receipt check: the one right code opens a report of `demo`; counts the checks
    (each a scrypt in the real service: the capacity the limits protect)."""

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
class Edge:
    app: FastAPI
    clock: FrozenClock
    intake: FakeIntake

    def client(self, ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(self.app, client=(ip, 40000), raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")

    async def exchange(self, ip: str, code: str, org: str = "demo") -> httpx.Response:
        async with self.client(ip) as client:
            return await client.post("/auth/receipt", json={"org": org, "receipt_code": code})


@pytest.fixture(scope="module")
async def edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    directory: Path = tmp_path_factory.mktemp("receipt-limits")
    url = await helpers.fresh_database("gateway", directory, backend="sqlite")
    settings = Settings(
        database_url=url,
        log_json=False,
        relay_background=False,
        auth_rate_limit_per_minute=100_000,  # the /auth/* limit has its own tests
        receipt_source_burst=BURST,
        receipt_source_per_minute=PER_MINUTE,
        receipt_org_failures_per_minute=CEILING,
        receipt_suspect_failures=SUSPECT,
    )
    intake = FakeIntake()
    clock = FrozenClock()
    transport = RoutingTransport({settings.intake_url: intake.app()})
    app = create_app(settings, transport=transport, clock=clock)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield Edge(app, clock, intake)


def _wrong(n: int) -> str:
    return f"AAAAA-BBBBB-CCCCC-{n:05d}"


async def test_an_attacker_gets_429_after_its_budget_while_a_reporter_elsewhere_gets_in(
    edge: Edge,
):
    statuses = [(await edge.exchange("203.0.113.66", _wrong(n))).status_code for n in range(10)]
    refused = await edge.exchange("203.0.113.66", _wrong(99))
    reporter = await edge.exchange("198.51.100.20", RIGHT_CODE)

    assert statuses == [401] * BURST + [429] * (10 - BURST)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/rate-limited")
    assert 1 <= int(refused.headers["retry-after"]) <= REFILL_SECONDS
    assert reporter.status_code == 200, reporter.text
    assert reporter.json()["scope"] == "reporter"


async def test_a_reporter_with_the_right_code_gets_in_at_once_after_a_thousand_failures(
    edge: Edge,
):
    statuses: dict[int, int] = {}
    for bot in range(400):  # 400 addresses, a few wrong codes each: 1,200 failures
        async with edge.client(f"10.{bot // 250}.{bot % 250}.9") as client:
            for attempt in range(SUSPECT + 1):
                answer = await client.post(
                    "/auth/receipt", json={"org": "demo", "receipt_code": _wrong(attempt)}
                )
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        edge.clock.advance(timedelta(milliseconds=50))

    reporter = await edge.exchange("198.51.100.21", RIGHT_CODE)

    assert statuses[401] >= 1200
    assert statuses[429] >= 300  # the 4th attempt of sources that failed 3 times, mid-attack
    assert edge.app.state.receipt_limiter.org_failures(_org("demo")) == CEILING
    assert reporter.status_code == 200, reporter.text


async def test_a_reporter_who_mistypes_once_then_types_the_right_code_gets_in(edge: Edge):
    for bot in range(CEILING):  # the org is over its ceiling
        await edge.exchange(f"192.0.2.{bot + 1}", _wrong(bot))

    typo = await edge.exchange("198.51.100.22", RIGHT_CODE[:-1] + "Q")
    right = await edge.exchange("198.51.100.22", RIGHT_CODE)

    assert typo.status_code == 401
    assert typo.json()["type"].endswith("/invalid-receipt")
    assert right.status_code == 200, right.text


async def test_guesses_over_the_budget_never_reach_intake(edge: Edge):
    before = len(edge.intake.checks)

    answers = [
        (await edge.exchange("203.0.113.77", _wrong(n), org="calm")).status_code for n in range(50)
    ]

    assert answers.count(401) == BURST
    assert len(edge.intake.checks) - before == BURST


async def test_no_delay_grows_for_the_organisation_through_twenty_minutes_of_guessing(
    edge: Edge,
):
    waits: list[int] = []
    for minute in range(20):
        # Each minute: one address guesses as fast as it can, 30 fresh ones fail once each.
        for attempt in range(10):
            answer = await edge.exchange("203.0.113.88", _wrong(attempt))
            if answer.status_code == 429:
                waits.append(int(answer.headers["retry-after"]))
        for bot in range(CEILING):
            await edge.exchange(f"10.200.{minute}.{bot + 1}", _wrong(bot))
        edge.clock.advance(timedelta(minutes=1))

    first_try_elsewhere = await edge.exchange("198.51.100.23", _wrong(1))
    reporter = await edge.exchange("198.51.100.24", RIGHT_CODE)

    assert len(waits) >= 20 * 5
    assert max(waits) <= 60  # a minute at most, the twentieth minute as the first
    assert first_try_elsewhere.status_code == 401  # checked: not held back by others' past
    assert reporter.status_code == 200, reporter.text


def _org(slug: str) -> str:
    from upstander.gateway.edge import anonymise

    return anonymise(slug)
