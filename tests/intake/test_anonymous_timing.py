"""Timing metadata of reports without a name: an anonymous or confidential report, its
attachments, data key and event keep the hour they were sent and nothing finer, in every row
and every log line; an identified report keeps its exact time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from timing_support import (
    finer_than_the_hour,
    json_log_lines,
    log_time,
    new_times,
    precise_timestamps,
    sqlite_file_bytes,
    stored_times,
)

from upstander.intake.forms.service import ensure_org
from upstander.intake.models import Outbox
from upstander.kit.clock import FrozenClock

REPORTS = "/intake/v1/reports"
REPORTER_ATTACHMENTS = "/intake/v1/reporter/attachments"
VERIFY = "/intake/internal/receipts/verify"
DAY = "2026-11-24"
SENT = datetime(2026, 11, 24, 9, 37, 12, 345678, tzinfo=UTC)
SENT_HOUR = datetime(2026, 11, 24, 9, tzinfo=UTC)
ADDRESS = "203.0.113.77"
BROWSER = "Mozilla/5.0 (X11; Linux) Firefox/131.0 unique-browser-7731"
REQUEST_ID = "anon-trace-5521"


def report(mode: str = "anonymous") -> dict[str, Any]:
    body: dict[str, Any] = {
        "org": "demo",
        "mode": mode,
        "description": "He cornered me in the copy room.",
        "categories": ["sexual_harassment"],
    }
    if mode == "confidential":
        body["reporter"] = {"name": "R. Porter", "contact": "r.porter@example.net"}
    return body


def with_file(body: dict[str, Any]) -> dict[str, Any]:
    """httpx `files=`: the report as a JSON part and one text attachment."""
    return {
        "files": [
            ("report", (None, json.dumps(body), "application/json")),
            ("files", ("note.txt", b"what I saw", "text/plain")),
        ]
    }


async def register(app: FastAPI, clock: FrozenClock) -> uuid.UUID:
    """The organisation, known to intake the day before anything is sent."""
    clock.set(datetime(2026, 11, 23, 8, 15, 1, 5, tzinfo=UTC))
    org_id = uuid.uuid4()
    async with app.state.sessionmaker() as session:
        await ensure_org(session, org_id, "demo", "Demo")
        await session.commit()
    return org_id


def is_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")


@pytest.mark.parametrize("mode", ["anonymous", "confidential"])
async def test_a_report_without_a_name_stores_only_the_hour_it_was_sent(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, database_url: str, mode: str
) -> None:
    await register(app, clock)
    before = await stored_times(app.state.engine)
    clock.set(SENT)

    response = await client.post(REPORTS, **with_file(report(mode)))

    assert response.status_code == 201, response.text
    assert response.json()["submitted_at"] == "2026-11-24T09:00:00Z"
    written = new_times(before, await stored_times(app.state.engine))
    assert {"reports", "attachments", "data_keys", "outbox"} <= {t for t, _, _ in written}
    assert finer_than_the_hour(written) == {}
    assert set(written.values()) == {SENT_HOUR}
    if is_sqlite(database_url):
        assert precise_timestamps(await sqlite_file_bytes(app.state.engine), DAY) == []


async def test_the_submitted_event_carries_the_hour_as_its_time(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(app, clock)
    clock.set(SENT)

    response = await client.post(REPORTS, json=report())

    assert response.status_code == 201, response.text
    async with app.state.sessionmaker() as session:
        [row] = (await session.scalars(select(Outbox))).all()
    envelope = app.state.events.envelope(row)
    assert envelope["time"] == SENT_HOUR.isoformat()
    assert envelope["data"]["submitted_at"] == SENT_HOUR.isoformat()
    assert (row.time, row.created_at, row.next_attempt_at) == (SENT_HOUR,) * 3


async def test_the_submissions_log_lines_carry_the_hour_and_no_address_browser_or_request_id(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await register(app, clock)
    clock.set(SENT)

    with json_log_lines() as lines:
        response = await client.post(
            REPORTS,
            json=report(),
            headers={
                "X-Forwarded-For": ADDRESS,
                "X-Real-IP": ADDRESS,
                "User-Agent": BROWSER,
                "X-Request-ID": REQUEST_ID,
            },
        )

    assert response.status_code == 201, response.text
    [access] = [json.loads(line) for line in lines if '"upstander.access"' in line]
    assert (access["route"], access["status"], access["request_id"]) == (REPORTS, 201, None)
    # The lines are written now (the wall clock), but each shows only its hour.
    for line in lines:
        moment = log_time(line)
        assert (moment.minute, moment.second, moment.microsecond) == (0, 0, 0), line
        assert json.loads(line)["request_id"] is None, line
    logged = "\n".join(lines)
    for trace in (ADDRESS, "127.0.0.1", "testclient", BROWSER, REQUEST_ID):
        assert trace not in logged
    assert precise_timestamps(logged, DAY) == []


async def test_the_gateways_receipt_check_is_logged_at_the_hour_only(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, mint_service: Any
) -> None:
    await register(app, clock)
    clock.set(SENT)
    code = (await client.post(REPORTS, json=report())).json()["receipt_code"]
    clock.set(SENT + timedelta(minutes=4, seconds=3))

    with json_log_lines() as lines:
        answer = await client.post(
            VERIFY,
            json={"org": "demo", "receipt_code": code},
            headers={
                "Authorization": f"Bearer {mint_service('gateway')}",
                "X-Request-ID": REQUEST_ID,
            },
        )

    assert answer.status_code == 200, answer.text
    [access] = [json.loads(line) for line in lines if '"upstander.access"' in line]
    assert access["route"] == VERIFY and access["request_id"] is None
    assert log_time(json.dumps(access)).minute == 0
    assert REQUEST_ID not in "\n".join(lines)


async def test_a_reporters_later_attachment_is_stored_at_the_hour_it_was_added(
    app: FastAPI,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    database_url: str,
    mint_reporter: Callable[[uuid.UUID, uuid.UUID], str],
) -> None:
    org_id = await register(app, clock)
    clock.set(SENT)
    report_id = uuid.UUID((await client.post(REPORTS, json=report())).json()["report_id"])
    before = await stored_times(app.state.engine)
    clock.set(datetime(2026, 11, 24, 10, 12, 45, 500001, tzinfo=UTC))

    response = await client.post(
        REPORTER_ATTACHMENTS,
        files={"file": ("later.txt", b"one more thing", "text/plain")},
        headers={"Authorization": f"Bearer {mint_reporter(report_id, org_id)}"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["created_at"] == "2026-11-24T10:00:00Z"
    written = new_times(before, await stored_times(app.state.engine))
    assert {"attachments", "outbox"} <= {t for t, _, _ in written}
    assert set(written.values()) == {datetime(2026, 11, 24, 10, tzinfo=UTC)}
    if is_sqlite(database_url):
        assert precise_timestamps(await sqlite_file_bytes(app.state.engine), DAY) == []


async def test_an_identified_report_keeps_its_exact_time(
    app: FastAPI,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    database_url: str,
    mint: Callable[..., str],
) -> None:
    org_id = await register(app, clock)
    clock.set(SENT)
    token = mint(org=org_id, roles=["staff"], sub=uuid.uuid4())

    response = await client.post(
        REPORTS, json=report("identified"), headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["submitted_at"] == "2026-11-24T09:37:12.345678Z"
    if is_sqlite(database_url):  # and the scan the other tests rely on sees it
        stored = precise_timestamps(await sqlite_file_bytes(app.state.engine), DAY)
        assert "2026-11-24 09:37:12.345678" in stored
