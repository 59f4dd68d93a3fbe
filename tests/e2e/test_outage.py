"""With the real processes: the cases service is down while reports keep coming; when it is
back, every report has become exactly one case."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from launcher import APPS, Platform, free_port, quiet_sink

pytestmark = pytest.mark.processes

REPORTS = 50


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    running = Platform(
        var_dir=tmp_path_factory.mktemp("outage"),
        ports={name: free_port() for name in APPS},
        sink=quiet_sink,
        # Retry often, so the catch-up after the restart takes seconds, not an hour.
        extra_env={
            "UPSTANDER_RELAY_POLL_SECONDS": "0.5",
            "UPSTANDER_RELAY_MAX_DELAY_SECONDS": "2",
            "UPSTANDER_RELAY_MAX_ATTEMPTS": "1000",
        },
    )
    with running:
        yield running


async def _eventually(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_reports_made_while_cases_is_down_all_become_cases(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=30) as gateway:

        async def form_is_public() -> bool:
            return (await gateway.get("/intake/v1/forms/demo")).status_code == 200

        assert await _eventually(form_is_public), "intake never learned the demo org"

        platform.stop_app("cases")
        accepted = 0
        for number in range(REPORTS):
            response = await gateway.post(
                "/intake/v1/reports",
                json={
                    "org": "demo",
                    "mode": "anonymous",
                    "categories": ["harassment"],
                    "description": f"report {number} made during the outage",
                },
            )
            assert response.status_code == 201, response.text
            accepted += 1
        assert accepted == REPORTS

        platform.start_app("cases")
        platform.wait_healthy()
        token = (
            await gateway.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": "case_manager@demo.example",
                    "password": "upstander-demo",
                },
            )
        ).json()["access_token"]

        async def case_count() -> int:
            response = await gateway.get(
                "/cases/v1/cases?limit=200", headers={"authorization": f"Bearer {token}"}
            )
            return len(response.json()["items"]) if response.status_code == 200 else 0

        async def all_arrived() -> bool:
            return await case_count() >= REPORTS

        assert await _eventually(all_arrived, timeout=90), f"only {await case_count()} cases"
        await asyncio.sleep(2)  # any duplicate would arrive now
        assert await case_count() == REPORTS
