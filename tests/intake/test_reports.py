"""Reports: the three modes, receipt codes and their verification, what is stored and emitted
(sealed, once, nothing readable at rest or in logs), attachments, and the org registry."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.app import create_app
from upstander.intake.forms.service import ensure_org
from upstander.intake.models import Attachment, Outbox, Report
from upstander.intake.settings import Settings
from upstander.kit import db as kit_db
from upstander.kit.auth import optional_principal
from upstander.kit.clock import coarse
from upstander.kit.db import CommittingRoute, get_session

PROBLEM_JSON = "application/problem+json"
RECEIPT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$")
REPORTS = "/intake/v1/reports"
REPORTER_ATTACHMENTS = "/intake/v1/reporter/attachments"
VERIFY = "/intake/internal/receipts/verify"
EVENTS = "/intake/internal/events"
SUBMITTED_KEYS = {
    "report_id",
    "org_id",
    "org_slug",
    "mode",
    "submitted_at",
    "language",
    "categories",
    "description",
    "occurred_at",
    "location",
    "people_involved",
    "witnesses",
    "desired_outcome",
    "excluded_person_ids",
    "reporter",
    "attachments",
}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60

Mint = Callable[..., str]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://upstander.dev/problems/{slug}"
    return body


def report(mode: str = "anonymous", org: str = "demo", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org": org,
        "mode": mode,
        "description": "He cornered me in the copy room.",
        "categories": ["sexual_harassment"],
    }
    if mode == "confidential":
        body["reporter"] = {"name": "R. Porter", "contact": "r.porter@example.net"}
    body.update(fields)
    return body


def multipart(body: dict[str, Any], *files: tuple[str, bytes, str]) -> dict[str, Any]:
    """httpx `files=`: the report as a JSON part, then one `files` part per file."""
    parts: list[tuple[str, Any]] = [("report", (None, json.dumps(body), "application/json"))]
    parts += [("files", file) for file in files]
    return {"files": parts}


async def register(app: FastAPI, slug: str = "demo", org_id: uuid.UUID | None = None) -> uuid.UUID:
    org_id = org_id or uuid.uuid4()
    async with app.state.sessionmaker() as session:
        await ensure_org(session, org_id, slug, slug.title())
        await session.commit()
    return org_id


async def outbox(app: FastAPI, type_: str | None = None) -> list[Any]:
    async with app.state.sessionmaker() as session:
        statement = select(Outbox).order_by(Outbox.seq)
        if type_ is not None:
            statement = statement.where(Outbox.type == type_)
        return list((await session.scalars(statement)).all())


def event_data(app: FastAPI, row: Any) -> dict[str, Any]:
    data: dict[str, Any] = app.state.events.envelope(row)["data"]
    return data


# ----------------------------------------------------------------------------- the three modes


async def test_an_anonymous_report_needs_no_token_and_gets_a_receipt_code(
    app: FastAPI, client: httpx.AsyncClient, clock: Any
) -> None:
    org_id = await register(app)

    response = await client.post(
        REPORTS, json=report(), headers={"Authorization": "Bearer not-even-a-jwt"}
    )

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert RECEIPT.match(body["receipt_code"])
    # Only the hour is kept for a report without a name (tests/intake/test_anonymous_timing.py).
    assert body["submitted_at"] == coarse(clock.now()).isoformat().replace("+00:00", "Z")
    assert "receipt code" in body["message"]
    async with app.state.sessionmaker() as session:
        stored = await session.get(Report, uuid.UUID(body["report_id"]))
    assert stored is not None
    assert (stored.org_id, stored.mode, stored.status) == (org_id, "anonymous", "submitted")
    assert stored.content is not None and stored.content["reporter"] is None
    assert stored.receipt_hash is not None and stored.receipt_hash.startswith("scrypt$")
    assert stored.receipt_lookup is not None and len(stored.receipt_lookup) == 64


async def test_an_anonymous_report_refuses_a_reporter(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    body = report(reporter={"name": "Me", "contact": "me@example.net"})

    response = await client.post(REPORTS, json=body)

    problem = assert_problem(response, 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["body.reporter"]


async def test_a_confidential_report_requires_its_reporter(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    without = report("confidential")
    del without["reporter"]

    refused = await client.post(REPORTS, json=without)
    accepted = await client.post(REPORTS, json=report("confidential", language="es"))

    problem = assert_problem(refused, 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["body.reporter"]
    assert accepted.status_code == 201, accepted.text
    assert RECEIPT.match(accepted.json()["receipt_code"])
    assert accepted.json()["message"].startswith("Gracias")
    [row] = await outbox(app)
    assert event_data(app, row)["reporter"] == {
        "name": "R. Porter",
        "contact": "r.porter@example.net",
    }


async def test_an_identified_report_needs_a_staff_token_of_the_organisation(
    app: FastAPI, client: httpx.AsyncClient, mint: Mint, mint_reporter: Any
) -> None:
    org_id = await register(app)
    person_id = uuid.uuid4()

    no_token = await client.post(REPORTS, json=report("identified"))
    other_org = await client.post(
        REPORTS, json=report("identified"), headers=auth(mint(org=uuid.uuid4(), roles=["staff"]))
    )
    as_reporter = await client.post(
        REPORTS, json=report("identified"), headers=auth(mint_reporter(uuid.uuid4(), org_id))
    )
    with_reporter = await client.post(
        REPORTS,
        json=report("identified", reporter={"name": "Me", "contact": "me@example.net"}),
        headers=auth(mint(org=org_id, roles=["staff"], sub=person_id)),
    )
    accepted = await client.post(
        REPORTS,
        json=report("identified"),
        headers=auth(mint(org=org_id, roles=["staff"], sub=person_id)),
    )

    assert_problem(no_token, 401, "unauthorized")
    assert_problem(other_org, 403, "forbidden")
    assert_problem(as_reporter, 403, "forbidden")
    assert_problem(with_reporter, 422, "validation-error")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["receipt_code"] is None
    [row] = await outbox(app)
    assert event_data(app, row)["reporter"] == {"person_id": str(person_id)}
    async with app.state.sessionmaker() as session:
        stored = await session.get(Report, uuid.UUID(accepted.json()["report_id"]))
    assert stored is not None and stored.receipt_lookup is None and stored.receipt_hash is None


async def test_an_unknown_or_deactivated_organisation_is_404(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    org_id = await register(app, "gone")
    async with app.state.sessionmaker() as session:
        await ensure_org(session, org_id, "gone", None, active=False)
        await session.commit()

    assert_problem(await client.post(REPORTS, json=report(org="nobody")), 404, "not-found")
    assert_problem(await client.post(REPORTS, json=report(org="gone")), 404, "not-found")


async def test_categories_must_come_from_the_form(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(app)

    response = await client.post(REPORTS, json=report(categories=["harassment", "parking"]))

    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"] == [
        {"field": "body.categories.1", "message": "Not a category of this form."}
    ]
    assert await outbox(app) == []


async def test_unknown_fields_are_a_422_problem(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(app)

    response = await client.post(REPORTS, json=report(ip_address="203.0.113.9"))

    problem = assert_problem(response, 422, "validation-error")
    assert {"field": "body.ip_address", "message": "Unknown field."} in problem["errors"]
    assert "203.0.113.9" not in response.text


async def test_limits_on_people_and_text_are_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(app)
    crowd = [{"name": f"Person {i}"} for i in range(21)]

    too_many = await client.post(REPORTS, json=report(witnesses=crowd))
    too_long = await client.post(REPORTS, json=report(description="x" * 20_001))
    nobody = await client.post(REPORTS, json=report(people_involved=[{"role": "subject"}]))

    assert_problem(too_many, 422, "validation-error")
    assert_problem(too_long, 422, "validation-error")
    assert_problem(nobody, 422, "validation-error")


async def test_malformed_json_is_a_400_problem(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(app)

    as_json = await client.post(
        REPORTS, content=b'{"org": "demo", "mode": ', headers={"Content-Type": "application/json"}
    )
    as_part = await client.post(
        REPORTS, files=[("report", (None, b'{"org": "demo", ', "application/json"))]
    )

    assert_problem(as_json, 400, "malformed-json")
    assert_problem(as_part, 400, "malformed-json")


# ----------------------------------------------------------------------------- what is emitted


async def test_report_submitted_is_written_once_for_cases_with_the_documented_data(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    org_id = await register(app)
    involved, excluded = uuid.uuid4(), uuid.uuid4()
    body = report(
        occurred_at="2026-11-20",
        location="Field office",
        people_involved=[
            {"person_id": str(involved), "role": "subject"},
            {"name": "A volunteer"},
        ],
        witnesses=[{"name": "Another volunteer"}],
        desired_outcome="That it stops.",
        excluded_person_ids=[str(excluded)],
    )

    response = await client.post(REPORTS, json=body)

    assert response.status_code == 201, response.text
    report_id = response.json()["report_id"]
    [row] = await outbox(app)
    assert (row.type, row.destination, row.org_id) == (
        "upstander.report.submitted",
        "cases",
        org_id,
    )
    assert row.subject == f"report/{report_id}"
    assert row.sealed_with is not None
    data = event_data(app, row)
    assert set(data) == SUBMITTED_KEYS
    assert data == {
        "report_id": report_id,
        "org_id": str(org_id),
        "org_slug": "demo",
        "mode": "anonymous",
        "submitted_at": "2026-11-24T09:00:00+00:00",  # the hour only
        "language": "en",
        "categories": ["sexual_harassment"],
        "description": "He cornered me in the copy room.",
        "occurred_at": "2026-11-20",
        "location": "Field office",
        "people_involved": [
            {"person_id": str(involved), "name": None, "role": "subject"},
            {"person_id": None, "name": "A volunteer", "role": None},
        ],
        "witnesses": [{"person_id": None, "name": "Another volunteer"}],
        "desired_outcome": "That it stops.",
        "excluded_person_ids": [str(excluded)],
        "reporter": None,
        "attachments": [],
    }


async def test_report_content_never_reaches_the_database_file_logs_or_outbox_in_the_clear(
    app: FastAPI,
    client: httpx.AsyncClient,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "sqlalchemy.engine", "aiosqlite", "python_multipart", "multipart"):
        caplog.set_level(logging.DEBUG, logger=name)
    await register(app)
    secret = f"Zanzibar-{uuid.uuid4().hex}"
    contact = f"{uuid.uuid4().hex}@reporter.example"
    body = report(
        "confidential",
        description=f"{secret} happened in the copy room",
        reporter={"name": f"Name-{secret}", "contact": contact},
        people_involved=[{"name": f"Subject-{secret}", "role": "subject"}],
    )

    response = await client.post(
        REPORTS, **multipart(body, (f"{secret}.txt", f"file says {secret}".encode(), "text/plain"))
    )

    assert response.status_code == 201, response.text
    code = response.json()["receipt_code"]
    [row] = await outbox(app)
    assert row.payload is not None and secret.encode() not in row.payload
    assert contact.encode() not in row.payload
    logged = {record.name for record in caplog.records}
    assert {"upstander.access", "sqlalchemy.engine.Engine"} <= logged  # the logs were on
    for needle in (secret, contact, code, code.replace("-", "")):
        assert needle not in caplog.text
    if database_url.startswith("sqlite"):
        async with app.state.engine.connect() as connection:
            await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        path = Path(database_url.split("///", 1)[1])
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"sexual_harassment" in stored  # the forms' plain JSON: the bytes are the db's
        for needle in (secret, contact, code, code.replace("-", "")):
            assert needle.encode() not in stored
            assert needle.encode("utf-16-le") not in stored


# ----------------------------------------------------------------------------- receipts


async def test_the_gateway_verifies_a_receipt_code_of_its_organisation(
    app: FastAPI, client: httpx.AsyncClient, mint_service: Any
) -> None:
    org_id = await register(app)
    await register(app, "elsewhere")
    submitted = (await client.post(REPORTS, json=report())).json()
    code = submitted["receipt_code"]
    service = auth(mint_service("gateway"))
    sloppy = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")

    right = await client.post(VERIFY, json={"org": "demo", "receipt_code": code}, headers=service)
    typed = await client.post(VERIFY, json={"org": "demo", "receipt_code": sloppy}, headers=service)
    wrong_code = await client.post(
        VERIFY, json={"org": "demo", "receipt_code": "00000-00000-00000-00000"}, headers=service
    )
    wrong_org = await client.post(
        VERIFY, json={"org": "elsewhere", "receipt_code": code}, headers=service
    )
    no_org = await client.post(
        VERIFY, json={"org": "Nobody!", "receipt_code": code}, headers=service
    )

    expected = {"report_id": submitted["report_id"], "org_id": str(org_id)}
    assert right.status_code == 200, right.text
    assert right.json() == expected
    assert typed.json() == expected
    problems = [assert_problem(r, 404, "not-found") for r in (wrong_code, wrong_org, no_org)]
    assert len({p["detail"] for p in problems}) == 1


async def test_only_services_verify_receipts(
    app: FastAPI, client: httpx.AsyncClient, mint: Mint
) -> None:
    org_id = await register(app)
    code = (await client.post(REPORTS, json=report())).json()["receipt_code"]
    body = {"org": "demo", "receipt_code": code}

    anyone = await client.post(VERIFY, json=body)
    admin = await client.post(VERIFY, json=body, headers=auth(mint(org=org_id, roles=["admin"])))

    assert_problem(anyone, 401, "unauthorized")
    assert_problem(admin, 403, "forbidden")
    assert VERIFY not in json.dumps(app.openapi()["paths"])


# ----------------------------------------------------------------------------- attachments


async def test_a_report_carries_its_attachments_encrypted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)

    response = await client.post(
        REPORTS,
        **multipart(
            report(),
            ("../photo of the note.jpg", JPEG, "image/jpeg"),
            ("screen.png", PNG, "image/png"),
        ),
    )

    assert response.status_code == 201, response.text
    report_id = uuid.UUID(response.json()["report_id"])
    async with app.state.sessionmaker() as session:
        rows = (
            await session.scalars(select(Attachment).where(Attachment.report_id == report_id))
        ).all()
    by_name = {row.filename: row for row in rows}
    assert set(by_name) == {"photo of the note.jpg", "screen.png"}
    photo = by_name["photo of the note.jpg"]
    assert (photo.content_type, photo.size) == ("image/jpeg", len(JPEG))
    assert base64.b64decode(photo.content or "") == JPEG
    [row] = await outbox(app)
    assert sorted(event_data(app, row)["attachments"], key=lambda a: a["filename"]) == sorted(
        (
            {
                "attachment_id": str(r.id),
                "filename": r.filename,
                "content_type": r.content_type,
                "size": r.size,
            }
            for r in rows
        ),
        key=lambda a: a["filename"],
    )


async def test_the_reporter_attaches_a_file_later(
    app: FastAPI, client: httpx.AsyncClient, mint_reporter: Any, mint: Mint
) -> None:
    org_id = await register(app)
    report_id = uuid.UUID((await client.post(REPORTS, json=report())).json()["report_id"])
    upload = {"file": ("later.png", PNG, "image/png")}

    added = await client.post(
        REPORTER_ATTACHMENTS, files=upload, headers=auth(mint_reporter(report_id, org_id))
    )
    as_staff = await client.post(
        REPORTER_ATTACHMENTS, files=upload, headers=auth(mint(org=org_id, roles=["staff"]))
    )
    other_org = await client.post(
        REPORTER_ATTACHMENTS, files=upload, headers=auth(mint_reporter(report_id, uuid.uuid4()))
    )
    unknown = await client.post(
        REPORTER_ATTACHMENTS, files=upload, headers=auth(mint_reporter(uuid.uuid4(), org_id))
    )

    assert added.status_code == 201, added.text
    metadata = added.json()
    assert metadata["report_id"] == str(report_id)
    assert (metadata["filename"], metadata["content_type"], metadata["size"]) == (
        "later.png",
        "image/png",
        len(PNG),
    )
    assert_problem(as_staff, 403, "forbidden")
    assert_problem(other_org, 404, "not-found")
    assert_problem(unknown, 404, "not-found")
    [row] = await outbox(app, "upstander.report.attachment_added")
    assert (row.destination, row.subject, row.org_id) == ("cases", f"report/{report_id}", org_id)
    assert event_data(app, row) == {
        "report_id": str(report_id),
        "org_id": str(org_id),
        "attachment_id": metadata["attachment_id"],
        "filename": "later.png",
        "content_type": "image/png",
        "size": len(PNG),
    }


async def test_an_oversized_attachment_is_413(
    app: FastAPI, client: httpx.AsyncClient, mint_reporter: Any
) -> None:
    org_id = await register(app)
    big = b"a" * (10 * 1024 * 1024 + 1)

    with_report = await client.post(REPORTS, **multipart(report(), ("big.txt", big, "text/plain")))
    report_id = uuid.UUID((await client.post(REPORTS, json=report())).json()["report_id"])
    later = await client.post(
        REPORTER_ATTACHMENTS,
        files={"file": ("big.txt", big, "text/plain")},
        headers=auth(mint_reporter(report_id, org_id)),
    )

    assert_problem(with_report, 413, "payload-too-large")
    assert_problem(later, 413, "payload-too-large")
    assert [r.type for r in await outbox(app)] == ["upstander.report.submitted"]


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("tool.exe", b"MZ\x90\x00", "application/x-msdownload"),
        ("photo.jpg", b"MZ\x90\x00 not a jpeg", "image/jpeg"),
    ],
)
async def test_an_attachment_of_the_wrong_type_is_415(
    app: FastAPI,
    client: httpx.AsyncClient,
    mint_reporter: Any,
    name: str,
    data: bytes,
    content_type: str,
) -> None:
    org_id = await register(app)

    with_report = await client.post(REPORTS, **multipart(report(), (name, data, content_type)))
    report_id = uuid.UUID((await client.post(REPORTS, json=report())).json()["report_id"])
    later = await client.post(
        REPORTER_ATTACHMENTS,
        files={"file": (name, data, content_type)},
        headers=auth(mint_reporter(report_id, org_id)),
    )

    assert_problem(with_report, 415, "unsupported-media-type")
    assert_problem(later, 415, "unsupported-media-type")


async def test_multipart_refuses_unknown_parts_and_too_many_files(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    files = [("files", (f"{i}.png", PNG, "image/png")) for i in range(6)]
    base = [("report", (None, json.dumps(report()), "application/json"))]

    unknown = await client.post(REPORTS, files=[*base, ("extra", (None, b"x", "text/plain"))])
    too_many = await client.post(REPORTS, files=[*base, *files])

    assert {"field": "body.extra", "message": "Unknown field."} in assert_problem(
        unknown, 422, "validation-error"
    )["errors"]
    assert_problem(too_many, 422, "validation-error")
    assert await outbox(app) == []


# ----------------------------------------------------------------------------- org registry


def org_event(type_: str, org_id: uuid.UUID, slug: str, active: bool = True) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/gateway",
        "type": type_,
        "subject": f"org/{org_id}",
        "time": datetime(2026, 11, 24, tzinfo=UTC).isoformat(),
        "orgid": str(org_id),
        "data": {"org_id": str(org_id), "slug": slug, "name": "Acme 2026", "active": active},
    }


async def test_org_events_open_and_close_the_front_door(
    client: httpx.AsyncClient, mint_service: Any
) -> None:
    org_id = uuid.uuid4()
    headers = {**auth(mint_service("gateway")), "content-type": "application/cloudevents+json"}
    created = org_event("upstander.org.created", org_id, "acme")

    first = await client.post(EVENTS, content=json.dumps(created), headers=headers)
    again = await client.post(EVENTS, content=json.dumps(created), headers=headers)
    form = await client.get("/intake/v1/forms/acme")
    accepted = await client.post(REPORTS, json=report(org="acme"))
    closed = await client.post(
        EVENTS,
        content=json.dumps(org_event("upstander.org.updated", org_id, "acme", active=False)),
        headers=headers,
    )

    assert first.json() == {"status": "processed"}
    assert again.json() == {"status": "duplicate"}
    assert form.status_code == 200 and form.json()["org_name"] == "Acme 2026"
    assert accepted.status_code == 201, accepted.text
    assert closed.json() == {"status": "processed"}
    assert_problem(await client.post(REPORTS, json=report(org="acme")), 404, "not-found")
    assert_problem(await client.get("/intake/v1/forms/acme"), 404, "not-found")


@pytest.fixture
def four_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps started in the test pool 2 connections, and 2 more under load, on either backend."""
    monkeypatch.setattr(kit_db, "SQLITE_POOL_SIZE", 2)
    monkeypatch.setattr(kit_db, "POOL_SIZE", 2)
    monkeypatch.setattr(kit_db, "POOL_OVERFLOW", 2)


@pytest.mark.usefixtures("four_connections")
async def test_identified_reports_by_more_people_than_the_pool_holds_all_go_through(
    intake_app_object: Any,
    database_url: str,
    clock: Any,
    mint: Mint,
) -> None:
    """A submission verifies its token (the revocation check reads the ledger with a pool
    connection of its own) before it reads the form with the request's session: the other way
    round, as many concurrent submissions as the pool holds each held one connection and
    waited for a second, and none came back (every report lost to a pool timeout)."""
    intake_app_object.app.state.settings.access_cache_seconds = 0  # every check reads the ledger
    async with intake_app_object.running(database_url=database_url, clock=clock) as app:
        org_id = await register(app)
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def submit() -> httpx.Response:
                token = mint(org=org_id, roles=["staff"], sub=uuid.uuid4())
                return await client.post(REPORTS, json=report("identified"), headers=auth(token))

            answers = await asyncio.wait_for(asyncio.gather(*(submit() for _ in range(12))), 20)
        assert [a.status_code for a in answers] == [201] * 12, answers[0].text
        assert len(await outbox(app, "upstander.report.submitted")) == 12


@pytest.mark.usefixtures("four_connections")
async def test_a_route_that_checks_a_token_after_using_its_session_never_starves_the_pool(
    gateway_transport: httpx.MockTransport,
    database_url: str,
    clock: Any,
    mint: Mint,
) -> None:
    """The access ledger reads through a pool of its own (kit/app.py): whatever order a route
    does things in, a request holding one of the app's connections never waits for another
    from the same pool to check a token."""
    settings = Settings(
        database_url=database_url,
        log_json=False,
        log_level="WARNING",
        relay_background=False,
        migrate_on_start=False,
        access_cache_seconds=0,  # every check reads the ledger
    )
    app = create_app(settings, transport=gateway_transport, clock=clock)
    probe = APIRouter(route_class=CommittingRoute)

    @probe.get("/probe")
    async def session_then_token(
        request: Request, session: AsyncSession = Depends(get_session)
    ) -> dict[str, bool]:
        await session.execute(text("SELECT 1"))  # holds one of the app's connections
        return {"signed_in": await optional_principal(request) is not None}

    app.include_router(probe)
    org_id = uuid.uuid4()
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def call() -> httpx.Response:
                token = mint(org=org_id, roles=["staff"], sub=uuid.uuid4())
                return await client.get("/probe", headers=auth(token))

            answers = await asyncio.wait_for(asyncio.gather(*(call() for _ in range(12))), 20)
    assert [a.json() for a in answers] == [{"signed_in": True}] * 12
