"""What the reporter gave, read through the gateway: a confidential report with a file goes in
at intake; handlers read it (never the reporter's identity, which only an assigned case
manager reads, with a reason), download the file as uploaded, while the people the case is
hidden from get nothing; after crypto-shredding, nothing of it is left in any database file."""

from __future__ import annotations

import json
import uuid
from typing import Any

import helpers
import jwt
import pytest
from harness import DEMO_PASSWORD, Platform
from sqlalchemy import func, select

from upstander.cases.models import Case, CaseAttachmentChunk
from upstander.cases.retention.service import delete_case
from upstander.kit.crypto import DataKeyMissing

MARKER = "Axolotl-marker-7310"
REPORTER_NAME = "Philippa Confidenza"
CONTACT = "philippa-secret@example.net"
FILE_MARKER = b"Okapi-bytes-2291"
PNG = b"\x89PNG\r\n\x1a\n" + FILE_MARKER + bytes(range(256)) * 6000  # > 1 MiB: 2 chunks
PASSWORD = "a-long-password-1"
REASON = "To call the reporter back about the interview."


async def person(
    platform: Platform, name: str, roles: list[str], manager: str | None = None
) -> tuple[str, str]:
    """(id, email) of a new staff member with a password."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@demo.example"
    response = await platform.gateway.post(
        "/identity/v1/people",
        json={
            "email": email,
            "name": name.title(),
            "roles": roles,
            "password": PASSWORD,
            "manager_id": manager,
        },
        headers=await platform.auth("admin@demo.example"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), email


async def file_report(platform: Platform, named: str, excluded: str) -> dict[str, Any]:
    report = {
        "org": "demo",
        "mode": "confidential",
        "description": f"{MARKER}: the field director cornered me after the rally",
        "categories": ["sexual_harassment"],
        "location": "Field office",
        "people_involved": [{"person_id": named, "role": "subject"}],
        "witnesses": [{"name": "A volunteer"}],
        "excluded_person_ids": [excluded],
        "reporter": {"name": REPORTER_NAME, "contact": CONTACT},
    }
    response = await platform.gateway.post(
        "/intake/v1/reports",
        files=[
            ("report", (None, json.dumps(report), "application/json")),
            ("files", ("note from him.png", PNG, "image/png")),
        ],
    )
    assert response.status_code == 201, response.text
    await platform.drain()
    # The file moves from intake into the case file, under the case's key.
    assert await platform.apps["cases"].state.attachment_fetcher.run_once() == 1
    return dict(response.json())


async def case_of(platform: Platform, report_id: str) -> str:
    listing = await platform.gateway.get(
        "/cases/v1/cases?limit=200", headers=await platform.auth("case_manager@demo.example")
    )
    [case] = [c for c in listing.json()["items"] if c["report_id"] == report_id]
    return str(case["id"])


def case_urls(case_id: str, attachment_id: str) -> list[str]:
    base = f"/cases/v1/cases/{case_id}"
    return [f"{base}/report", f"{base}/attachments", f"{base}/attachments/{attachment_id}/content"]


async def test_handlers_read_the_report_and_its_file_and_nobody_else_does(
    platform: Platform,
) -> None:
    chief, chief_email = await person(platform, "chief", ["case_manager"])
    named, named_email = await person(platform, "named", ["case_manager"], manager=chief)
    excluded, excluded_email = await person(platform, "excluded", ["reviewer"])
    await platform.drain()
    filed = await file_report(platform, named, excluded)
    case_id = await case_of(platform, filed["report_id"])
    manager = await platform.auth("case_manager@demo.example")

    report = await platform.gateway.get(f"/cases/v1/cases/{case_id}/report", headers=manager)
    assert report.status_code == 200, report.text
    body = report.json()
    assert MARKER in body["description"]
    assert body["people_involved"][0]["person_id"] == named
    assert body["witnesses"] == [{"person_id": None, "name": "A volunteer", "role": None}]
    assert REPORTER_NAME not in report.text and CONTACT not in report.text
    [attachment] = body["attachments"]
    assert (attachment["filename"], attachment["content_type"], attachment["size"]) == (
        "note from him.png",
        "image/png",
        len(PNG),
    )
    assert attachment["available"] is True

    download = await platform.gateway.get(
        f"/cases/v1/cases/{case_id}/attachments/{attachment['id']}/content", headers=manager
    )
    assert download.status_code == 200, download.text
    assert download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"note from him.png\"; filename*=UTF-8''note%20from%20him.png"
    )

    # The reviewer recuses; then the case is hidden from them like from the others.
    reviewer = await platform.auth("reviewer@demo.example")
    recused = await platform.gateway.post(f"/cases/v1/cases/{case_id}/recusal", headers=reviewer)
    assert recused.status_code == 201, recused.text
    hidden = [(e, PASSWORD) for e in (named_email, excluded_email, chief_email)]
    for who, password in [*hidden, ("reviewer@demo.example", DEMO_PASSWORD)]:
        headers = await platform.auth(who, password=password)
        for url in case_urls(case_id, attachment["id"]):
            response = await platform.gateway.get(url, headers=headers)
            assert response.status_code == 404, (who, url, response.text)
            assert MARKER not in response.text
    staff = await platform.auth("staff@demo.example")
    for url in case_urls(case_id, attachment["id"]):
        response = await platform.gateway.get(url, headers=staff)
        assert response.status_code == 404, (url, response.text)  # no handler role: as if hidden
    # Intake's internal route is not reachable through the gateway.
    internal = await platform.gateway.get(
        f"/intake/internal/reports/{filed['report_id']}/attachments/{attachment['id']}/content"
    )
    assert internal.status_code in (403, 404)
    assert FILE_MARKER not in internal.content


async def test_only_an_assigned_case_manager_reads_the_reporters_identity_with_a_reason(
    platform: Platform,
) -> None:
    named, _ = await person(platform, "named", ["staff"])
    excluded, _ = await person(platform, "excluded", ["staff"])
    await platform.drain()
    filed = await file_report(platform, named, excluded)
    case_id = await case_of(platform, filed["report_id"])
    url = f"/cases/v1/cases/{case_id}/reporter-identity"
    manager = await platform.auth("case_manager@demo.example")
    admin = await platform.auth("admin@demo.example")
    token = await platform.token("case_manager@demo.example")
    manager_id = jwt.decode(token, options={"verify_signature": False})["sub"]

    before_assignment = await platform.gateway.post(url, json={"reason": REASON}, headers=manager)
    assigned = await platform.gateway.post(
        f"/cases/v1/cases/{case_id}/assignments",
        json={"person_id": manager_id, "role": "case_manager"},
        headers=admin,
    )
    no_reason = await platform.gateway.get(url, headers=manager)
    read = await platform.gateway.get(url, params={"reason": REASON}, headers=manager)
    admin_read = await platform.gateway.post(url, json={"reason": REASON}, headers=admin)

    assert before_assignment.status_code == 403, before_assignment.text
    assert assigned.status_code == 201, assigned.text
    assert no_reason.status_code == 422, no_reason.text
    assert read.status_code == 200, read.text
    assert (read.json()["name"], read.json()["contact"]) == (REPORTER_NAME, CONTACT)
    assert admin_read.status_code == 403, admin_read.text
    trail = await platform.gateway.get(
        "/cases/v1/audit",
        params={"case_id": case_id, "limit": 200},
        headers=await platform.auth("auditor@demo.example"),
    )
    assert trail.status_code == 200, trail.text
    reads = [e for e in trail.json()["items"] if e["action"] == "reporter_identity.read"]
    assert [e["detail"] for e in reads] == [{"read_id": read.json()["read_id"]}]
    assert REASON not in trail.text and REPORTER_NAME not in trail.text


async def test_after_crypto_shredding_nothing_the_reporter_gave_is_left(
    platform: Platform,
) -> None:
    named, _ = await person(platform, "named", ["staff"])
    excluded, _ = await person(platform, "excluded", ["staff"])
    await platform.drain()
    filed = await file_report(platform, named, excluded)
    case_id = await case_of(platform, filed["report_id"])
    manager = await platform.auth("case_manager@demo.example")
    listing = await platform.gateway.get(f"/cases/v1/cases/{case_id}/attachments", headers=manager)
    [attachment] = listing.json()["items"]
    cases = platform.apps["cases"]

    # What the retention pass does to each case past its period (the shared platform's clock
    # is not moved on by years: other tests run on it).
    async with cases.state.sessionmaker() as session, session.begin():
        case = await session.get_one(Case, uuid.UUID(case_id))
        await delete_case(session, case, vault=cases.state.vault, now=platform.clock.now())

    for url in case_urls(case_id, attachment["id"]):
        response = await platform.gateway.get(url, headers=manager)
        assert response.status_code == 404, (url, response.text)
    with pytest.raises(DataKeyMissing):
        await cases.state.vault.fetch_dek(uuid.UUID(case_id))
    async with cases.state.sessionmaker() as session:
        chunks = await session.scalar(
            select(func.count())
            .select_from(CaseAttachmentChunk)
            .where(CaseAttachmentChunk.case_id == uuid.UUID(case_id))
        )
    assert chunks == 0
    if helpers.selected_backend() != "sqlite":
        return  # below: the bytes of the SQLite files as they sit on disk
    for app in platform.apps.values():
        async with app.state.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [p for p in platform.directory.rglob("*") if p.is_file() and ".db" in p.name]
    assert files
    for path in files:
        raw = path.read_bytes()
        for secret in (MARKER.encode(), FILE_MARKER, REPORTER_NAME.encode(), CONTACT.encode()):
            assert secret not in raw, (path.name, secret)


async def service_token(platform: Platform, service: str) -> str:
    settings = platform.apps["gateway"].state.settings
    response = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": f"svc-{service}",
            "client_secret": settings.service_secret,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_intake_hands_attachment_bytes_to_the_cases_service_only(
    platform: Platform,
) -> None:
    named, _ = await person(platform, "named", ["staff"])
    excluded, _ = await person(platform, "excluded", ["staff"])
    await platform.drain()
    filed = await file_report(platform, named, excluded)
    case_id = await case_of(platform, filed["report_id"])
    listing = await platform.gateway.get(
        f"/cases/v1/cases/{case_id}/attachments",
        headers=await platform.auth("case_manager@demo.example"),
    )
    [attachment] = listing.json()["items"]
    token = await platform.token("admin@demo.example")
    org_id = jwt.decode(token, options={"verify_signature": False})["org"]
    url = f"/intake/internal/reports/{filed['report_id']}/attachments/{attachment['id']}/content"
    intake = platform.client("intake")

    async def fetch(bearer: str | None, org: str = org_id) -> Any:
        headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
        return await intake.get(url, params={"org_id": org}, headers=headers)

    anonymous = await fetch(None)
    staff = await fetch(token)
    notify = await fetch(await service_token(platform, "notify"))
    cases = await fetch(await service_token(platform, "cases"))
    other_org = await fetch(await service_token(platform, "cases"), str(uuid.uuid4()))

    assert anonymous.status_code == 401
    assert (staff.status_code, notify.status_code) == (403, 403)
    assert FILE_MARKER not in staff.content + notify.content + anonymous.content
    assert cases.status_code == 200 and cases.content == PNG
    assert other_org.status_code == 404
