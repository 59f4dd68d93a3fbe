"""Nothing is lost between services: a consumer that fails, an acknowledgment that is lost,
an event delivered twice — each still ends with exactly one effect."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from harness import Platform
from sqlalchemy import func, select

from upstander.cases.models import Case

CASES = "127.0.0.1:8002"


class FaultyRoute(httpx.AsyncBaseTransport):
    """Stands between the relay and the cases service and breaks the first `failures`
    deliveries: before they arrive (`lose="request"`) or after cases handled them and before
    the relay hears back (`lose="response"`)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int, lose: str) -> None:
        self.inner = inner
        self.failures = failures
        self.lose = lose
        self.seen = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/internal/events" not in request.url.path or self.failures == 0:
            return await self.inner.handle_async_request(request)
        self.failures -= 1
        self.seen += 1
        if self.lose == "response":
            response = await self.inner.handle_async_request(request)
            await response.aread()
        return httpx.Response(503, json={"title": "injected fault"})


async def _cases_for(platform: Platform, report_id: str) -> int:
    async with platform.apps["cases"].state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Case).where(Case.report_id == uuid.UUID(report_id))
        )
    return int(count or 0)


async def _submit(platform: Platform) -> str:
    response = await platform.gateway.post(
        "/intake/v1/reports",
        json={
            "org": "demo",
            "mode": "anonymous",
            "description": "delivery test",
            "categories": ["harassment"],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["report_id"])


async def _with_faulty_cases(platform: Platform, failures: int, lose: str) -> FaultyRoute:
    original = platform.transport.routes[CASES]
    faulty = FaultyRoute(original, failures, lose)
    platform.transport.routes[CASES] = faulty
    return faulty


async def test_a_consumer_that_fails_once_ends_with_one_case(platform: Platform) -> None:
    await platform.drain()
    original = platform.transport.routes[CASES]
    faulty = await _with_faulty_cases(platform, failures=1, lose="request")
    try:
        report_id = await _submit(platform)
        await platform.drain()
        assert faulty.seen == 1
        assert await _cases_for(platform, report_id) == 0  # not yet: the retry is not due
        platform.clock.advance(timedelta(minutes=5))
        await platform.drain()
        assert await _cases_for(platform, report_id) == 1
    finally:
        platform.transport.routes[CASES] = original


async def test_a_lost_acknowledgment_is_redelivered_without_a_second_case(
    platform: Platform,
) -> None:
    await platform.drain()
    original = platform.transport.routes[CASES]
    faulty = await _with_faulty_cases(platform, failures=1, lose="response")
    try:
        report_id = await _submit(platform)
        await platform.drain()
        assert faulty.seen == 1
        assert await _cases_for(platform, report_id) == 1  # handled, but the relay never knew
        platform.clock.advance(timedelta(minutes=5))
        await platform.drain()  # redelivered: the inbox recognises it
        assert await _cases_for(platform, report_id) == 1
    finally:
        platform.transport.routes[CASES] = original


async def test_the_same_event_twice_has_one_effect(platform: Platform) -> None:
    await platform.drain()
    token = await platform.apps["gateway"].state.token_issuer.issue_gateway_service_token()
    org_id = (
        await platform.gateway.get(
            "/identity/v1/orgs/current", headers=await platform.auth("admin@demo.example")
        )
    ).json()["id"]
    report_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/intake",
        "type": "upstander.report.submitted",
        "subject": f"report/{report_id}",
        "time": platform.clock.now().isoformat(),
        "orgid": org_id,
        "data": {
            "report_id": report_id,
            "org_id": org_id,
            "org_slug": "demo",
            "mode": "anonymous",
            "submitted_at": platform.clock.now().isoformat(),
            "language": "en",
            "categories": ["harassment"],
            "description": "twice",
            "people_involved": [],
            "witnesses": [],
            "excluded_person_ids": [],
            "reporter": None,
            "attachments": [],
        },
    }
    headers = {"authorization": f"Bearer {token}", "content-type": "application/cloudevents+json"}
    first = await platform.client("cases").post(
        "/cases/internal/events", json=event, headers=headers
    )
    second = await platform.client("cases").post(
        "/cases/internal/events", json=event, headers=headers
    )
    assert first.status_code == 200, first.text
    assert (first.json()["status"], second.json()["status"]) == ("processed", "duplicate")
    assert await _cases_for(platform, report_id) == 1
