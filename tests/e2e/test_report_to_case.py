"""From report to case, through the gateway: an anonymous report becomes a case that the right
people handle, while the reporter follows it and talks to them with only a receipt code."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from harness import Platform

from upstander.cases.cases.deadlines import acknowledge_by, feedback_by
from upstander.kit.clock import coarse

SECRET_TEXT = "Zanzibar-orchid-7731 the deputy cornered me in the van"


async def _person(platform: Platform, email: str, name: str, roles: list[str]) -> str:
    admin = await platform.auth("admin@demo.example")
    response = await platform.gateway.post(
        "/identity/v1/people",
        json={"email": email, "name": name, "roles": roles, "password": "a-long-password-1"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _report(platform: Platform, org: str = "demo", **fields: object) -> dict:
    body = {
        "org": org,
        "mode": "anonymous",
        "description": SECRET_TEXT,
        "categories": ["sexual_harassment"],
        **fields,
    }
    response = await platform.gateway.post("/intake/v1/reports", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _receipt_token(platform: Platform, org: str, code: str) -> dict[str, str]:
    response = await platform.gateway.post("/auth/receipt", json={"org": org, "receipt_code": code})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def _case_for(platform: Platform, headers: dict[str, str], report_count: int) -> dict:
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=headers)
    assert listing.status_code == 200, listing.text
    return listing.json()


async def test_anonymous_report_to_case_and_back(platform: Platform) -> None:
    # An anonymous report is received at the hour it was sent (tests/e2e/test_anonymous_timing.py).
    received = coarse(platform.clock.now())
    filed = await _report(platform)
    assert "receipt_code" in filed and len(filed["receipt_code"].replace("-", "")) >= 16
    await platform.drain()

    # The case is opened once, numbered, with the EU directive's deadlines.
    manager = await platform.auth("case_manager@demo.example")
    cases = (await _case_for(platform, manager, 1))["items"]
    mine = [c for c in cases if c.get("report_id") == filed["report_id"]]
    assert len(mine) == 1, cases
    case = mine[0]
    assert case["status"] == "new"
    assert case["number"].startswith(f"DEMO-{received.year}-")
    assert abs(_parse(case["acknowledge_by"]) - acknowledge_by(received)) < timedelta(seconds=5)
    assert abs(_parse(case["feedback_by"]) - feedback_by(received)) < timedelta(seconds=5)

    # The case manager is told, with the number and nothing else.
    inbox = await platform.gateway.get("/notify/v1/inbox", headers=manager)
    assert inbox.status_code == 200, inbox.text
    notices = [m for m in inbox.json()["items"] if case["number"] in m["subject"] + m["body"]]
    assert notices, inbox.json()
    assert all(SECRET_TEXT not in m["subject"] + m["body"] for m in inbox.json()["items"])

    # Handler → reporter.
    sent = await platform.gateway.post(
        f"/cases/v1/cases/{case['id']}/messages",
        json={"body": "Thank you for telling us. Can you say when this happened?"},
        headers=manager,
    )
    assert sent.status_code == 201, sent.text

    # The reporter, with nothing but the receipt code, reads the case and the message.
    reporter = await _receipt_token(platform, "demo", filed["receipt_code"])
    status = await platform.gateway.get("/cases/v1/reporter/case", headers=reporter)
    assert status.status_code == 200, status.text
    assert status.json()["number"] == case["number"]
    assert "acknowledge_by" in status.json() and "feedback_by" in status.json()
    thread = await platform.gateway.get("/cases/v1/reporter/messages", headers=reporter)
    assert thread.status_code == 200
    bodies = [m["body"] for m in thread.json()["items"]]
    assert "Thank you for telling us. Can you say when this happened?" in bodies
    assert all("author_person_id" not in m for m in thread.json()["items"])

    # Reporter → handler.
    reply = await platform.gateway.post(
        "/cases/v1/reporter/messages",
        json={"body": "Last Tuesday, after the rally."},
        headers=reporter,
    )
    assert reply.status_code == 201, reply.text
    handler_view = await platform.gateway.get(
        f"/cases/v1/cases/{case['id']}/messages", headers=manager
    )
    assert "Last Tuesday, after the rally." in [m["body"] for m in handler_view.json()["items"]]

    # The reporter token opens nothing else.
    other = await platform.gateway.get(f"/cases/v1/cases/{case['id']}", headers=reporter)
    assert other.status_code in (401, 403, 404)


async def test_report_text_is_never_stored_or_logged_in_the_clear(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    filed = await _report(platform, description=SECRET_TEXT + " (second)")
    await platform.drain()
    reporter = await _receipt_token(platform, "demo", filed["receipt_code"])
    await platform.gateway.post(
        "/cases/v1/reporter/messages", json={"body": SECRET_TEXT}, headers=reporter
    )
    await platform.drain()
    for record in caplog.records:
        assert "Zanzibar-orchid-7731" not in record.getMessage()
        assert "Zanzibar-orchid-7731" not in str(record.__dict__)
        assert filed["receipt_code"] not in str(record.__dict__)
    if platform.directory.glob("*.db"):
        for app in platform.apps.values():
            async with app.state.engine.connect() as connection:
                if connection.dialect.name == "sqlite":
                    await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        for path in platform.directory.rglob("*"):
            if not path.is_file():
                continue
            raw = path.read_bytes()
            assert b"Zanzibar-orchid-7731" not in raw, path.name
            assert filed["receipt_code"].encode() not in raw, path.name


async def test_excluded_and_named_case_managers_never_see_the_case(platform: Platform) -> None:
    suffix = uuid.uuid4().hex[:8]
    named = await _person(platform, f"named-{suffix}@demo.example", "Named CM", ["case_manager"])
    excluded = await _person(
        platform, f"excluded-{suffix}@demo.example", "Excluded CM", ["case_manager"]
    )
    await platform.drain()
    filed = await _report(
        platform,
        people_involved=[{"person_id": named, "role": "subject"}],
        excluded_person_ids=[excluded],
    )
    await platform.drain()

    manager = await platform.auth("case_manager@demo.example")
    cases = (await _case_for(platform, manager, 1))["items"]
    case = next(c for c in cases if c.get("report_id") == filed["report_id"])

    for email in (f"named-{suffix}@demo.example", f"excluded-{suffix}@demo.example"):
        headers = await platform.auth(email, password="a-long-password-1")
        direct = await platform.gateway.get(f"/cases/v1/cases/{case['id']}", headers=headers)
        assert direct.status_code == 404, direct.text
        listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=headers)
        assert case["id"] not in [c["id"] for c in listing.json()["items"]]
        inbox = await platform.gateway.get("/notify/v1/inbox", headers=headers)
        assert inbox.status_code == 200
        assert not [m for m in inbox.json()["items"] if case["number"] in m["subject"] + m["body"]]


async def test_receipt_guessing_is_slowed_and_codes_do_not_cross_orgs(platform: Platform) -> None:
    from upstander.gateway.identity import service

    async with platform.apps["gateway"].state.sessionmaker() as session:
        for slug in ("beta-e2e", "gamma-e2e"):
            await service.create_org(session, slug=slug, name=slug.title())
        await session.commit()
    await platform.drain()
    beta = await _report(platform, org="beta-e2e")

    # A valid code, presented for another org, yields nothing.
    wrong_org = await platform.gateway.post(
        "/auth/receipt", json={"org": "demo", "receipt_code": beta["receipt_code"]}
    )
    assert wrong_org.status_code == 401
    assert wrong_org.headers["content-type"].startswith("application/problem+json")

    # Guessing from one address against one org: after a handful of failures, 429.
    attacker = httpx.AsyncClient(
        transport=httpx.ASGITransport(
            platform.apps["gateway"], client=("203.0.113.9", 40000), raise_app_exceptions=False
        ),
        base_url="http://127.0.0.1:8000",
    )
    async with attacker:
        statuses = []
        for attempt in range(10):
            response = await attacker.post(
                "/auth/receipt",
                json={"org": "gamma-e2e", "receipt_code": f"AAAAA-BBBBB-CCCCC-{attempt:05d}"},
            )
            statuses.append(response.status_code)
        assert statuses[0] == 401
        assert 429 in statuses
        limited = [r for r in statuses if r == 429]
        assert len(limited) >= 3
        blocked = await attacker.post(
            "/auth/receipt", json={"org": "gamma-e2e", "receipt_code": "AAAAA-BBBBB-CCCCC-DDDDD"}
        )
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_confidential_reporter_is_told_of_a_reply_and_nothing_more(
    platform: Platform,
) -> None:
    filed = await _report(
        platform,
        mode="confidential",
        reporter={"name": "Jordan Vega", "contact": "jordan.vega@example.org"},
        language="es",
    )
    await platform.drain()
    manager = await platform.auth("case_manager@demo.example")
    cases = (await _case_for(platform, manager, 1))["items"]
    case = next(c for c in cases if c.get("report_id") == filed["report_id"])
    mail = platform.directory / "mail"
    before = set(mail.glob("*.eml")) if mail.exists() else set()

    sent = await platform.gateway.post(
        f"/cases/v1/cases/{case['id']}/messages",
        json={"body": "Confidential-marker-4411: please call the outside reviewer."},
        headers=manager,
    )
    assert sent.status_code == 201, sent.text
    await platform.drain()

    new = [p.read_text() for p in set(mail.glob("*.eml")) - before]
    to_reporter = [m for m in new if "jordan.vega@example.org" in m]
    assert len(to_reporter) == 1, new
    message = to_reporter[0]
    assert "Confidential-marker-4411" not in message
    assert case["number"] not in message
    assert "Jordan" not in message.split("\n\n", 1)[1]
