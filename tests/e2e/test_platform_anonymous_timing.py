"""Timing metadata of an anonymous report across the platform: sent at 09:37:12.345678, it
leaves only "09:00" behind, in every row of intake and cases, in the case handlers see (whose
deadlines count from 09:00), and in every log line written while it was sent, delivered and
followed up by its reporter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import helpers
import pytest
from harness import DEMO_PASSWORD, Platform, running_platform
from sqlalchemy import text
from timing_support import (
    finer_than_the_hour,
    json_log_lines,
    log_time,
    new_times,
    precise_timestamps,
    sqlite_file_bytes,
    stored_times,
)

from upstander.cases.cases.deadlines import acknowledge_by, feedback_by

DAY = "2026-11-24"
SENT = datetime(2026, 11, 24, 9, 37, 12, 345678, tzinfo=UTC)
SENT_HOUR = datetime(2026, 11, 24, 9, tzinfo=UTC)
FOLLOWED_UP = datetime(2026, 11, 24, 10, 41, 3, 500001, tzinfo=UTC)
ADDRESS = "198.51.100.23"
BROWSER = "Mozilla/5.0 (Macintosh) Safari/605.1 unique-browser-4410"
REQUEST_ID = "anon-e2e-trace-9031"
TRACES = {"X-Forwarded-For": ADDRESS, "User-Agent": BROWSER, "X-Request-ID": REQUEST_ID}
SERVICES_CHECKED = ("intake", "cases")

pytestmark = pytest.mark.skipif(
    helpers.selected_backend() != "sqlite", reason="reads the SQLite files themselves"
)


async def _signed_in(platform: Platform, email: str) -> dict[str, str]:
    """A fresh token (the platform caches tokens, and this test moves the clock by hours)."""
    response = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": email, "password": DEMO_PASSWORD},
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _snapshot(platform: Platform) -> dict[str, Any]:
    return {name: await stored_times(platform.apps[name].state.engine) for name in SERVICES_CHECKED}


async def _written_since(platform: Platform, before: dict[str, Any]) -> dict[str, Any]:
    return {
        name: new_times(before[name], await stored_times(platform.apps[name].state.engine))
        for name in SERVICES_CHECKED
    }


async def _precise_in_files(platform: Platform) -> dict[str, list[str]]:
    return {
        name: precise_timestamps(await sqlite_file_bytes(platform.apps[name].state.engine), DAY)
        for name in SERVICES_CHECKED
    }


def _fine_lines(lines: list[str]) -> Iterator[tuple[str, str, str]]:
    """Log lines that show a time finer than the hour, except the gateway's access lines of
    `POST /auth/token`: a relay fetching its service token (a known limit, see
    docs/design.md). They name no client."""
    for line in lines:
        entry = json.loads(line)
        moment = log_time(line)
        if (moment.minute, moment.second, moment.microsecond) == (0, 0, 0):
            continue
        if entry.get("logger") == "upstander.access" and entry.get("route") == "/auth/token":
            continue
        yield entry.get("logger", ""), entry.get("route", ""), entry.get("message", "")


async def test_an_anonymous_report_leaves_no_time_finer_than_the_hour_in_rows_or_logs(
    tmp_path: Path,
) -> None:
    async with running_platform(tmp_path) as platform:
        platform.clock.set(SENT)
        before = await _snapshot(platform)

        # Sent at 09:37:12.345678; delivered to cases a quarter of a second later.
        with json_log_lines() as sending:
            response = await platform.gateway.post(
                "/intake/v1/reports",
                files=[
                    (
                        "report",
                        (
                            None,
                            json.dumps(
                                {
                                    "org": "demo",
                                    "mode": "anonymous",
                                    "description": "The deputy cornered me in the van.",
                                    "categories": ["sexual_harassment"],
                                }
                            ),
                            "application/json",
                        ),
                    ),
                    ("files", ("what-i-saw.txt", b"notes from that night", "text/plain")),
                ],
                headers=TRACES,
            )
            assert response.status_code == 201, response.text
            platform.clock.advance(timedelta(milliseconds=250))
            await platform.drain()
        # Cases then fetches the attachment's bytes from intake, in the background (its rows
        # are checked below; its own log line is not yet coarse: see docs/design.md).
        platform.clock.advance(timedelta(milliseconds=250))
        await platform.apps["cases"].state.attachment_fetcher.run_once()
        filed = response.json()

        written = await _written_since(platform, before)
        assert {"reports", "attachments", "data_keys", "outbox"} <= {
            table for table, _, _ in written["intake"]
        }
        assert {
            "cases",
            "case_reports",
            "case_attachments",
            "case_attachment_files",
            "case_attachment_chunks",
            "data_keys",
            "inbox",
            "outbox",
        } <= {table for table, _, _ in written["cases"]}
        assert {name: finer_than_the_hour(times) for name, times in written.items()} == {
            "intake": {},
            "cases": {},
        }
        assert await _precise_in_files(platform) == {"intake": [], "cases": []}
        assert sending, "the logs were on"
        assert list(_fine_lines(sending)) == []
        logged = "\n".join(sending)
        for trace in (ADDRESS, BROWSER, REQUEST_ID):
            assert trace not in logged

        # An hour later the reporter comes back with the receipt code and writes.
        platform.clock.set(FOLLOWED_UP)
        before = await _snapshot(platform)
        with json_log_lines() as following:
            exchanged = await platform.gateway.post(
                "/auth/receipt",
                json={"org": "demo", "receipt_code": filed["receipt_code"]},
                headers=TRACES,
            )
            assert exchanged.status_code == 200, exchanged.text
            reporter = {"authorization": f"Bearer {exchanged.json()['access_token']}", **TRACES}
            wrote = await platform.gateway.post(
                "/cases/v1/reporter/messages",
                json={"body": "Is anyone there?"},
                headers={**reporter, "Idempotency-Key": "first-message"},
            )
            assert wrote.status_code == 201, wrote.text
            mine = await platform.gateway.get("/cases/v1/reporter/case", headers=reporter)
            assert mine.status_code == 200, mine.text
            platform.clock.advance(timedelta(milliseconds=250))
            await platform.drain()

        written = await _written_since(platform, before)
        assert "messages" in {table for table, _, _ in written["cases"]}
        assert {name: finer_than_the_hour(times) for name, times in written.items()} == {
            "intake": {},
            "cases": {},
        }
        assert await _precise_in_files(platform) == {"intake": [], "cases": []}
        assert list(_fine_lines(following)) == []
        # The gateway keeps the reporter's Idempotency-Key too (cases' copy is scanned above).
        async with platform.apps["gateway"].state.engine.connect() as connection:
            kept = (
                await connection.execute(
                    text("SELECT created_at FROM idempotency_keys WHERE caller LIKE 'reporter:%'")
                )
            ).all()
        assert [str(row.created_at) for row in kept] == ["2026-11-24 10:00:00.000000"]
        assert REQUEST_ID not in "\n".join(following)

        # What handlers see: received at 09:00, deadlines counted from 09:00.
        manager = await _signed_in(platform, "case_manager@demo.example")
        listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
        assert listing.status_code == 200, listing.text
        [summary] = [c for c in listing.json()["items"] if c["report_id"] == filed["report_id"]]
        opened = await platform.gateway.get(f"/cases/v1/cases/{summary['id']}", headers=manager)
        assert opened.status_code == 200, opened.text
        case = opened.json()
        received = _moment(case["received_at"])
        assert received == SENT_HOUR
        assert _moment(case["acknowledge_by"]) == acknowledge_by(received)
        assert _moment(case["feedback_by"]) == feedback_by(received)
