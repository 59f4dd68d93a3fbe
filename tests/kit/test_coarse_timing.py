"""The kit's rule for anonymous reporters' timing: `coarse()` floors to the hour, and requests
to anonymous routes (or marked coarse by their handler) are logged at the hour, without
request id, and kept out of the metrics; every other request keeps its precise line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from timing_support import json_log_lines, log_time

from upstander.kit.clock import coarse, for_reporter, is_coarse
from upstander.kit.observability import (
    AccessLogMiddleware,
    Metrics,
    RequestIdMiddleware,
    coarse_timing,
    is_anonymous_path,
    keep_time_coarse,
)

SENT = datetime(2026, 11, 24, 9, 37, 12, 345678, tzinfo=UTC)


def test_coarse_floors_to_the_hour_in_utc() -> None:
    assert coarse(SENT) == datetime(2026, 11, 24, 9, tzinfo=UTC)
    in_madrid = SENT.astimezone(timezone(timedelta(hours=1)))
    assert coarse(in_madrid) == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert coarse(SENT, timedelta(minutes=15)) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert is_coarse(coarse(SENT)) and not is_coarse(SENT)


def test_coarse_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError):
        coarse(datetime(2026, 11, 24, 9, 37))


def test_only_an_identified_reporter_keeps_the_exact_time() -> None:
    assert for_reporter(SENT, "anonymous") == coarse(SENT)
    assert for_reporter(SENT, "confidential") == coarse(SENT)
    assert for_reporter(SENT, "identified") == SENT


def test_anonymous_paths_are_the_reporters_routes_only() -> None:
    for path in (
        "/intake/v1/reports",
        "/intake/v1/reporter/attachments",
        "/intake/v1/forms/demo",
        "/auth/receipt",
        "/cases/v1/reporter/messages",
        "/r/demo",
    ):
        assert is_anonymous_path(path), path
    for path in ("/intake/v1/reportsx", "/readyz", "/cases/v1/cases", "/auth/token"):
        assert not is_anonymous_path(path), path


def test_a_log_line_in_a_coarse_block_shows_the_hour_and_no_request_id() -> None:
    log = logging.getLogger("upstander.test.timing")
    with json_log_lines() as lines:
        with coarse_timing():
            log.info("inside")
        log.info("outside")

    inside, outside = (json.loads(line) for line in lines)
    assert (inside["message"], outside["message"]) == ("inside", "outside")
    assert is_coarse(log_time(json.dumps(inside)))
    assert inside["request_id"] is None


@pytest.fixture
def service() -> Iterator[tuple[FastAPI, Metrics]]:
    app = FastAPI()
    metrics = Metrics("test")

    @app.post("/intake/v1/reports")
    async def submit() -> dict[str, str]:
        logging.getLogger("upstander.test.timing").info("stored")
        return {}

    @app.post("/cases/internal/events")
    async def deliver() -> dict[str, str]:
        keep_time_coarse()  # as the kit's event router does for a coarse event
        return {}

    @app.get("/cases/v1/cases")
    async def cases() -> dict[str, str]:
        return {}

    app.add_middleware(AccessLogMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    yield app, metrics


async def _call(app: FastAPI, method: str, path: str) -> list[dict[str, object]]:
    transport = httpx.ASGITransport(app)
    with json_log_lines() as lines:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.request(
                method, path, headers={"X-Request-ID": "trace-1", "User-Agent": "browser-1"}
            )
            assert response.status_code == 200
    entries = [json.loads(line) for line in lines]
    return [e for e in entries if str(e["logger"]).startswith("upstander.")]  # not httpx's


def _requests_counted(metrics: Metrics, route: str) -> float:
    value = metrics.registry.get_sample_value(
        "http_requests_total",
        {"service": "test", "method": "POST", "route": route, "status": "200"},
    )
    return value or 0.0


async def test_an_anonymous_route_is_logged_at_the_hour_without_request_id_or_metrics(
    service: tuple[FastAPI, Metrics],
) -> None:
    app, metrics = service

    lines = await _call(app, "POST", "/intake/v1/reports")

    assert [line["message"] for line in lines] == ["stored", "request"]
    for line in lines:
        assert is_coarse(datetime.fromisoformat(str(line["time"])))
        assert line["request_id"] is None
        assert "browser-1" not in json.dumps(line)
    assert _requests_counted(metrics, "/intake/v1/reports") == 0


async def test_a_handler_can_keep_its_requests_line_coarse(
    service: tuple[FastAPI, Metrics],
) -> None:
    app, metrics = service

    [line] = await _call(app, "POST", "/cases/internal/events")

    assert is_coarse(datetime.fromisoformat(str(line["time"])))
    assert line["request_id"] is None
    assert _requests_counted(metrics, "/cases/internal/events") == 0


async def test_other_routes_keep_their_precise_line_and_request_id(
    service: tuple[FastAPI, Metrics],
) -> None:
    app, _ = service

    [line] = await _call(app, "GET", "/cases/v1/cases")

    assert line["request_id"] == "trace-1"
    assert line["route"] == "/cases/v1/cases"
