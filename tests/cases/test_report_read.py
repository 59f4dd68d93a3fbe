"""Reading what the reporter gave: the report for whoever may see the case (never a
confidential reporter's identity), the identity itself only with a reason and an assignment,
the attachments copied from intake under the case's key and downloaded safely, and all of it
gone for good once the case is crypto-shredded."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cases_world import Org, auth, cloud_event, problem
from fastapi import FastAPI
from sqlalchemy import LargeBinary, func, select, text, type_coerce, update

from upstander.cases.models import (
    AuditEntry,
    Case,
    CaseAttachment,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    CaseReport,
    CaseStatus,
    ReporterIdentityRead,
)
from upstander.cases.report.fetcher import AttachmentFetcher
from upstander.kit.clock import FrozenClock, coarse

MARKER = "Quokka-marker-5521"
DESCRIPTION = f"{MARKER}: he cornered me in the copy room"
REPORTER_NAME = "Ottoline Confidentia"
CONTACT = "ottoline-secret@example.net"
FILE_MARKER = b"Pangolin-bytes-9034"
INTAKE = "http://127.0.0.1:8001/intake/internal"
REASON = "To arrange the interview the reporter asked for."
SERVICE_TOKEN = "test-service-token-for-cases"
PNG = b"\x89PNG\r\n\x1a\n" + FILE_MARKER + bytes(range(256)) * 9000  # > 2 MiB: 3 chunks


class Intake:
    """Stands in for intake's internal attachment route: bytes by (report, attachment),
    only for the cases service's token; `failures` answers first with those statuses."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.failures: list[int] = []
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {SERVICE_TOKEN}":
            return httpx.Response(401)
        if self.failures:
            return httpx.Response(self.failures.pop(0))
        parts = request.url.path.split("/")
        # /intake/internal/reports/{report}/attachments/{attachment}/content
        data = self.files.get((parts[4], parts[6]))
        if data is None:
            return httpx.Response(404)
        headers = {"X-Content-SHA256": hashlib.sha256(data).hexdigest()}
        return httpx.Response(200, content=data, headers=headers)


class Tokens:
    async def token(self) -> str:
        return SERVICE_TOKEN

    def invalidate(self) -> None:
        pass


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


@pytest.fixture
def intake() -> Intake:
    return Intake()


@pytest.fixture
async def fetcher(app: FastAPI, intake: Intake) -> AsyncIterator[AttachmentFetcher]:
    """The app's attachment fetcher, talking to the intake stand-in."""
    fetcher: AttachmentFetcher = app.state.attachment_fetcher
    original = fetcher.http, fetcher.tokens
    async with httpx.AsyncClient(transport=httpx.MockTransport(intake.handle)) as http:
        fetcher.http, fetcher.tokens = http, Tokens()
        yield fetcher
    fetcher.http, fetcher.tokens = original


def attachment(name: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {
        "attachment_id": str(uuid.uuid4()),
        "filename": name,
        "content_type": content_type,
        "size": len(data),
    }


async def confidential_report(
    org: Org, intake: Intake, files: list[tuple[str, str, bytes]] | None = None, **extra: Any
) -> tuple[uuid.UUID, uuid.UUID, list[str]]:
    """A confidential report naming `involved`, excluding `excluded`, with files that intake
    holds; returns (report id, case id, attachment ids)."""
    files = [("note.png", "image/png", PNG)] if files is None else files
    metas = [attachment(name, kind, data) for name, kind, data in files]
    fields: dict[str, Any] = {
        "mode": "confidential",
        "description": DESCRIPTION,
        "occurred_at": "2026-11-20",
        "location": "Field office",
        "witnesses": [{"person_id": None, "name": "Octavia Witnessworth"}],
        "desired_outcome": "That it stops.",
        "reporter": {"name": REPORTER_NAME, "contact": CONTACT},
        "attachments": metas,
        **extra,
    }
    report_id, case_id = await org.report(**fields)
    for meta, (_, _, data) in zip(metas, files, strict=True):
        intake.files[(str(report_id), meta["attachment_id"])] = data
    return report_id, case_id, [m["attachment_id"] for m in metas]


async def audit_actions(app: FastAPI, case_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.detail)
            .where(AuditEntry.case_id == case_id)
            .order_by(AuditEntry.seq)
        )
        return [(action, detail) for action, detail in rows]


async def assign(org: Org, case_id: uuid.UUID, person: str, role: str) -> None:
    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/assignments",
        json={"person_id": str(org.people[person]), "role": role},
        headers=org.admin(),
    )
    assert response.status_code == 201, response.text


def urls(case_id: uuid.UUID, attachment_id: str) -> list[str]:
    base = f"/cases/v1/cases/{case_id}"
    return [
        f"{base}/report",
        f"{base}/attachments",
        f"{base}/attachments/{attachment_id}/content",
        f"{base}/reporter-identity?reason={quote(REASON)}",
    ]


async def sqlite_bytes(app: FastAPI, database_url: str) -> bytes:
    """Every byte of the SQLite database as it sits on disk (empty on PostgreSQL, whose
    files these tests do not read)."""
    if not database_url.startswith("sqlite"):
        return b""
    async with app.state.engine.connect() as connection:
        await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(database_url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


# ----------------------------------------------------------------------------- the report


async def test_a_handler_reads_everything_the_reporter_gave_but_their_identity(
    app: FastAPI, org: Org, intake: Intake
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)

    response = await org.client.get(
        f"/cases/v1/cases/{case_id}/report", headers=org.headers("handler")
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"] == DESCRIPTION
    assert body["reporter_mode"] == "confidential"
    assert body["source"] == "report"
    assert (body["occurred_at"], body["location"]) == ("2026-11-20", "Field office")
    assert body["people_involved"] == [
        {"person_id": str(org.involved), "name": None, "role": "subject"}
    ]
    assert body["witnesses"] == [{"person_id": None, "name": "Octavia Witnessworth", "role": None}]
    assert body["desired_outcome"] == "That it stops."
    assert body["categories"] == ["sexual_harassment"]
    assert body["language"] == "en"
    [listed] = body["attachments"]
    assert listed["id"] == attachment_id
    assert (listed["filename"], listed["content_type"], listed["size"]) == (
        "note.png",
        "image/png",
        len(PNG),
    )
    assert listed["status"] == "pending" and listed["available"] is False
    assert REPORTER_NAME not in response.text and CONTACT not in response.text
    assert "reporter" not in body
    assert response.headers["cache-control"] == "no-store"
    assert ("report.read", {}) in await audit_actions(app, case_id)


@pytest.mark.parametrize(
    ("person", "why"),
    [
        ("involved", "named in the report"),
        ("excluded", "excluded by the reporter"),
        ("manager", "the involved person's manager"),
        ("candidate", "above the manager in the chain"),
        ("investigator", "an investigator not assigned"),
    ],
)
async def test_people_the_case_is_hidden_from_get_404_everywhere(
    app: FastAPI, org: Org, intake: Intake, fetcher: AttachmentFetcher, person: str, why: str
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    await fetcher.run_once()
    # Whatever role their token carries: restrictions win over every role.
    roles = ["investigator"] if person == "investigator" else ["reviewer", "admin"]

    for url in urls(case_id, attachment_id):
        response = await org.client.get(url, headers=org.headers(person, roles))
        problem(response, 404, "not-found")
        assert MARKER not in response.text, why

    refused = [a for a, _ in await audit_actions(app, case_id) if a == "case.refused"]
    assert len(refused) == 4


async def test_a_recused_handler_gets_404_everywhere(
    org: Org, intake: Intake, fetcher: AttachmentFetcher
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    await fetcher.run_once()
    handler = org.headers("handler")
    before = await org.client.get(f"/cases/v1/cases/{case_id}/report", headers=handler)
    recused = await org.client.post(f"/cases/v1/cases/{case_id}/recusal", headers=handler)
    assert (before.status_code, recused.status_code) == (200, 201)

    for url in urls(case_id, attachment_id):
        problem(await org.client.get(url, headers=handler), 404, "not-found")


async def test_a_plain_staff_member_is_refused_by_role_on_every_case(
    org: Org, intake: Intake
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    unknown = uuid.uuid4()

    for url in urls(case_id, attachment_id) + urls(unknown, attachment_id):
        # The same 404 for a real case and an unknown id: no existence oracle.
        problem(
            await org.client.get(url, headers=org.headers("handler", ["staff"])), 404, "not-found"
        )


async def test_another_organisations_case_is_404(org: Org, intake: Intake, mint: Any) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    outsider = auth(mint(org=uuid.uuid4(), roles=["reviewer", "admin"]))

    for url in urls(case_id, attachment_id):
        problem(await org.client.get(url, headers=outsider), 404, "not-found")


async def test_a_follow_up_case_names_its_source(app: FastAPI, org: Org) -> None:
    # A case opened from a retaliation check-in holds a report of another shape.
    _, case_id = await org.report()
    async with app.state.sessionmaker() as session, session.begin():
        report = await session.scalar(select(CaseReport).where(CaseReport.case_id == case_id))
        assert report is not None
        report.content = {
            "source": "retaliation_check_in",
            "follows_up": "DEMO-2026-0001",
            "description": "They moved my shifts.",
            "language": "es",
            "categories": ["retaliation"],
        }

    body = (
        await org.client.get(f"/cases/v1/cases/{case_id}/report", headers=org.headers("handler"))
    ).json()

    assert (body["source"], body["follows_up"]) == ("retaliation_check_in", "DEMO-2026-0001")
    assert body["description"] == "They moved my shifts."
    assert (body["people_involved"], body["attachments"]) == ([], [])


# ----------------------------------------------------------------------------- identity


async def test_reading_the_reporters_identity_needs_a_reason(org: Org, intake: Intake) -> None:
    _, case_id, _ = await confidential_report(org, intake)
    await assign(org, case_id, "handler", "case_manager")
    url = f"/cases/v1/cases/{case_id}/reporter-identity"
    handler = org.headers("handler")

    missing = await org.client.get(url, headers=handler)
    short = await org.client.get(url, params={"reason": "because"}, headers=handler)
    blank = await org.client.get(url, params={"reason": " " * 20}, headers=handler)
    too_long = await org.client.get(url, params={"reason": "x" * 501}, headers=handler)
    no_body = await org.client.post(url, json={}, headers=handler)
    short_body = await org.client.post(url, json={"reason": "   why?    "}, headers=handler)

    for response in (missing, short, blank, too_long, no_body, short_body):
        body = problem(response, 422, "validation-error")
        assert REPORTER_NAME not in response.text
        assert body["errors"][0]["field"] in ("query.reason", "body.reason"), body


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_assigned_case_manager_reads_the_identity_and_the_read_is_audited(
    app: FastAPI, org: Org, intake: Intake, database_url: str, method: str
) -> None:
    _, case_id, _ = await confidential_report(org, intake)
    await assign(org, case_id, "handler", "case_manager")
    url = f"/cases/v1/cases/{case_id}/reporter-identity"

    if method == "GET":
        response = await org.client.get(
            url, params={"reason": REASON}, headers=org.headers("handler")
        )
    else:
        response = await org.client.post(
            url, json={"reason": REASON}, headers=org.headers("handler")
        )

    assert response.status_code == 200, response.text
    identity = response.json()
    assert (identity["name"], identity["contact"]) == (REPORTER_NAME, CONTACT)
    assert identity["reporter_mode"] == "confidential" and identity["person_id"] is None
    assert response.headers["cache-control"] == "no-store"
    reads = [d for a, d in await audit_actions(app, case_id) if a == "reporter_identity.read"]
    assert reads == [{"read_id": identity["read_id"]}]
    async with app.state.sessionmaker() as session:
        read = await session.get_one(ReporterIdentityRead, uuid.UUID(identity["read_id"]))
        raw = await session.scalar(
            select(type_coerce(ReporterIdentityRead.reason, LargeBinary)).where(
                ReporterIdentityRead.id == read.id
            )
        )
    assert (read.person_id, read.reason) == (org.handler, REASON)
    assert raw is not None and REASON.encode() not in bytes(raw)
    stored = await sqlite_bytes(app, database_url)
    for secret in (REASON, REPORTER_NAME, CONTACT):
        assert secret.encode() not in stored, secret


async def test_an_assigned_reviewer_reads_the_identity(org: Org, intake: Intake) -> None:
    _, case_id, _ = await confidential_report(org, intake)
    await assign(org, case_id, "reviewer", "reviewer")

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/reporter-identity",
        json={"reason": REASON},
        headers=org.headers("reviewer"),
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == REPORTER_NAME


@pytest.mark.parametrize(
    ("person", "roles", "assigned_as"),
    [
        ("handler", ["case_manager"], None),  # sees the case, not assigned
        ("reviewer", ["reviewer"], None),  # sees every case, not assigned
        ("investigator", ["investigator"], "investigator"),  # assigned, not in a reading role
        ("handler", ["admin"], None),  # an admin, not assigned
    ],
)
async def test_the_identity_is_refused_to_anyone_not_assigned_as_manager_or_reviewer(
    app: FastAPI,
    org: Org,
    intake: Intake,
    person: str,
    roles: list[str],
    assigned_as: str | None,
) -> None:
    _, case_id, _ = await confidential_report(org, intake)
    if assigned_as:
        await assign(org, case_id, person, assigned_as)
    sees = await org.client.get(f"/cases/v1/cases/{case_id}", headers=org.headers(person, roles))
    assert sees.status_code == 200, sees.text

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/reporter-identity",
        json={"reason": REASON},
        headers=org.headers(person, roles),
    )

    problem(response, 403, "forbidden")
    assert REPORTER_NAME not in response.text and CONTACT not in response.text
    actions = await audit_actions(app, case_id)
    assert "reporter_identity.read" not in [a for a, _ in actions]
    assert (
        "case.refused",
        {"method": "POST", "route": "/cases/v1/cases/{case_id}/reporter-identity", "status": 403},
    ) in actions


async def test_api_clients_never_read_the_identity(org: Org, intake: Intake, mint: Any) -> None:
    _, case_id, _ = await confidential_report(org, intake)
    # Owned by a reviewer, so the case is visible to it: the refusal is about the identity.
    client = auth(
        mint(
            org=org.id,
            roles=["reviewer"],
            typ="client",
            sub="integration-1",
            owner=str(org.reviewer),
        )
    )

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/reporter-identity", json={"reason": REASON}, headers=client
    )

    problem(response, 403, "forbidden")


async def test_an_anonymous_report_has_no_identity_to_read(org: Org) -> None:
    _, case_id = await org.report()
    await assign(org, case_id, "handler", "case_manager")

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/reporter-identity",
        json={"reason": REASON},
        headers=org.headers("handler"),
    )

    problem(response, 409, "no-reporter-identity")


async def test_an_identified_reporter_is_their_directory_id(org: Org) -> None:
    reporter = {"person_id": str(org.underling)}
    _, case_id = await org.report(mode="identified", reporter=reporter)
    await assign(org, case_id, "handler", "case_manager")

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/reporter-identity",
        json={"reason": REASON},
        headers=org.headers("handler"),
    )

    assert response.status_code == 200, response.text
    assert response.json()["person_id"] == str(org.underling)
    assert (response.json()["name"], response.json()["contact"]) == (None, None)


# ----------------------------------------------------------------------------- attachments


async def test_an_attachment_downloads_as_the_exact_bytes_with_safe_headers(
    app: FastAPI, org: Org, intake: Intake, fetcher: AttachmentFetcher, clock: FrozenClock
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)

    assert await fetcher.run_once() == 1
    response = await org.client.get(
        f"/cases/v1/cases/{case_id}/attachments/{attachment_id}/content",
        headers=org.headers("handler"),
    )

    assert response.status_code == 200, response.text
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(PNG))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"note.png\"; filename*=UTF-8''note.png"
    )
    async with app.state.sessionmaker() as session:
        file = await session.scalar(select(CaseAttachmentFile))
        chunks = await session.scalar(select(func.count()).select_from(CaseAttachmentChunk))
    assert file is not None and file.status == "stored" and file.chunk_count == chunks == 3
    assert file.sha256 == hashlib.sha256(PNG).hexdigest()
    # A confidential report: the fetch, seconds after the submission, keeps the hour only.
    assert file.stored_at == file.created_at == coarse(clock.now())
    assert ("attachment.download", {"attachment_id": attachment_id}) in await audit_actions(
        app, case_id
    )
    listing = await org.client.get(
        f"/cases/v1/cases/{case_id}/attachments", headers=org.headers("handler")
    )
    assert [(a["id"], a["status"], a["available"]) for a in listing.json()["items"]] == [
        (attachment_id, "stored", True)
    ]


async def test_a_risky_type_or_file_name_is_made_safe(
    org: Org, intake: Intake, fetcher: AttachmentFetcher
) -> None:
    html = b"<script>alert(1)</script>" + FILE_MARKER
    name = '../../évil"; filename=x.exe\r\n.html'
    _, case_id, [attachment_id] = await confidential_report(
        org, intake, files=[(name, "text/html", html)]
    )
    await fetcher.run_once()

    response = await org.client.get(
        f"/cases/v1/cases/{case_id}/attachments/{attachment_id}/content",
        headers=org.headers("handler"),
    )

    assert response.content == html
    assert response.headers["content-type"] == "application/octet-stream"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert disposition.count('"') == 2 and disposition.count(";") == 2
    assert "/" not in disposition.split("filename*=")[0] and "\r" not in disposition
    assert "filename*=UTF-8''" in disposition and "%C3%A9vil" in disposition


async def test_a_file_still_at_intake_is_409_and_fetching_retries_until_it_arrives(
    app: FastAPI, org: Org, intake: Intake, fetcher: AttachmentFetcher, clock: FrozenClock
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    intake.failures = [503, 404]
    url = f"/cases/v1/cases/{case_id}/attachments/{attachment_id}/content"

    await fetcher.run_once()
    pending = await org.client.get(url, headers=org.headers("handler"))
    assert await fetcher.run_once() == 0  # not due yet: backing off
    clock.advance(timedelta(hours=2))
    await fetcher.run_once()  # 404: intake says gone once; not given up
    clock.advance(timedelta(hours=2))
    await fetcher.run_once()

    body = problem(pending, 409, "attachment-not-available")
    assert body["attachment_status"] == "pending"
    async with app.state.sessionmaker() as session:
        file = await session.scalar(select(CaseAttachmentFile))
    assert file is not None
    assert (file.status, file.attempts, file.last_error) == ("stored", 3, None)
    response = await org.client.get(url, headers=org.headers("handler"))
    assert response.content == PNG


async def test_a_file_intake_keeps_saying_is_gone_becomes_unavailable(
    app: FastAPI, org: Org, intake: Intake, fetcher: AttachmentFetcher, clock: FrozenClock
) -> None:
    report_id, case_id, [attachment_id] = await confidential_report(org, intake)
    del intake.files[(str(report_id), attachment_id)]

    for _ in range(5):
        await fetcher.run_once()
        clock.advance(timedelta(hours=2))

    response = await org.client.get(
        f"/cases/v1/cases/{case_id}/attachments/{attachment_id}/content",
        headers=org.headers("handler"),
    )
    body = problem(response, 409, "attachment-not-available")
    assert body["attachment_status"] == "unavailable"
    assert await fetcher.run_once() == 0


async def test_an_attachment_added_later_is_fetched_too(
    app: FastAPI, org: Org, intake: Intake, fetcher: AttachmentFetcher
) -> None:
    report_id, case_id, _ = await confidential_report(org, intake, files=[])
    later = b"%PDF-1.7 " + FILE_MARKER
    meta = attachment("statement.pdf", "application/pdf", later)
    intake.files[(str(report_id), meta["attachment_id"])] = later
    await org.send(
        cloud_event(
            "upstander.report.attachment_added",
            {"report_id": str(report_id), "org_id": str(org.id), **meta},
            org_id=org.id,
        )
    )

    assert await fetcher.run_once() == 1
    response = await org.client.get(
        f"/cases/v1/cases/{case_id}/attachments/{meta['attachment_id']}/content",
        headers=org.headers("handler"),
    )

    assert response.content == later
    assert response.headers["content-type"] == "application/pdf"


async def test_an_attachment_of_another_case_is_404(
    org: Org, intake: Intake, fetcher: AttachmentFetcher
) -> None:
    _, _, [first_attachment] = await confidential_report(org, intake)
    _, second, _ = await confidential_report(org, intake)
    await fetcher.run_once()

    response = await org.client.get(
        f"/cases/v1/cases/{second}/attachments/{first_attachment}/content",
        headers=org.headers("handler"),
    )

    problem(response, 404, "not-found")


# ----------------------------------------------------------------------------- shredding


async def test_after_crypto_shredding_nothing_the_reporter_gave_is_left(
    app: FastAPI,
    org: Org,
    intake: Intake,
    fetcher: AttachmentFetcher,
    clock: FrozenClock,
    database_url: str,
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    await fetcher.run_once()
    await assign(org, case_id, "handler", "case_manager")
    identity = await org.client.post(
        f"/cases/v1/cases/{case_id}/reporter-identity",
        json={"reason": REASON},
        headers=org.headers("handler"),
    )
    assert identity.status_code == 200
    before = await sqlite_bytes(app, database_url)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(status=CaseStatus.CLOSED, closed_at=clock.now())
        )
    clock.advance(timedelta(days=1462))

    assert await app.state.retention.run_once() == 1

    for url in urls(case_id, attachment_id):
        problem(await org.client.get(url, headers=org.headers("handler")), 404, "not-found")
    async with app.state.sessionmaker() as session:
        for model in (
            CaseAttachment,
            CaseAttachmentFile,
            CaseAttachmentChunk,
            ReporterIdentityRead,
        ):
            left = await session.scalar(select(func.count()).select_from(model))
            assert left == 0, model
    after = await sqlite_bytes(app, database_url)
    for stored in (before, after):
        for secret in (MARKER.encode(), FILE_MARKER, REPORTER_NAME.encode(), CONTACT.encode()):
            assert secret not in stored, secret


async def test_a_visible_case_whose_key_is_destroyed_answers_410_shredded(
    app: FastAPI, org: Org, intake: Intake, fetcher: AttachmentFetcher
) -> None:
    _, case_id, [attachment_id] = await confidential_report(org, intake)
    await fetcher.run_once()
    await assign(org, case_id, "handler", "case_manager")
    async with app.state.sessionmaker() as session, session.begin():
        await app.state.vault.destroy_key(session, case_id)

    for url in urls(case_id, attachment_id):
        response = await org.client.get(url, headers=org.headers("handler"))
        problem(response, 410, "shredded")
        assert MARKER not in response.text and REPORTER_NAME not in response.text
