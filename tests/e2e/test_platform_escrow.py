"""The matching escrow across the platform, through the gateway: two reporters name the same
person (an email in one form, the directory id in the other); before either releases, no
handler route, event, notice or log line, and no database, shows anything; each reporter
sees the match with their receipt token, releases, and the two cases open linked, routed
by the usual rules (the named person never sees them), while each reporter follows their
own case with the same receipt code. A private record's proof checks out through the
gateway too."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from harness import Platform

PASSWORD = "a-long-password-1"


async def _person(platform: Platform, email: str, roles: list[str], **extra: object) -> str:
    admin = await platform.auth("admin@demo.example")
    response = await platform.gateway.post(
        "/identity/v1/people",
        json={
            "email": email,
            "name": "Named Person",
            "roles": roles,
            "password": PASSWORD,
            **extra,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _hold(platform: Platform, identifier: dict[str, str], words: str) -> dict[str, str]:
    response = await platform.gateway.post(
        "/intake/v1/escrow",
        json={"org": "demo", "identifiers": [identifier], "report": {"description": words}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "waiting" and body["receipt_code"]
    return dict(body)


async def _token(platform: Platform, code: str) -> dict[str, str]:
    response = await platform.gateway.post(
        "/auth/receipt", json={"org": "demo", "receipt_code": code}
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def _everything_stored(platform: Platform, only: str | None = None) -> bytes:
    """Every row of every app's database (or only one's), raw."""
    from sqlalchemy import text

    out = bytearray()
    for name, app in platform.apps.items():
        if only is not None and name != only:
            continue
        async with app.state.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                names = [
                    r[0]
                    for r in (
                        await conn.exec_driver_sql(
                            "SELECT name FROM sqlite_master WHERE type='table'"
                        )
                    ).all()
                ]
            else:
                names = [
                    r[0]
                    for r in (
                        await conn.exec_driver_sql(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                        )
                    ).all()
                ]
            for table in names:
                for row in (await conn.execute(text(f'SELECT * FROM "{table}"'))).all():
                    for value in row:
                        raw = isinstance(value, bytes | bytearray | memoryview)
                        out += bytes(value) if raw else str(value).encode()
    return bytes(out)


async def test_two_reporters_match_release_and_open_linked_cases(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="upstander")
    caplog.set_level("INFO")
    suffix = uuid.uuid4().hex[:8]
    marker = f"Escrow-marker-{suffix}"
    email = f"named-{suffix}@demo.example"
    named = await _person(platform, email, ["case_manager"])
    await platform.drain()  # intake learns the person (and their email's blind index)

    first = await _hold(
        platform, {"kind": "email", "value": f"  {email.upper()} "}, f"{marker} one"
    )
    second = await _hold(platform, {"kind": "person", "value": named}, f"{marker} two")
    await platform.drain()

    # Before release: nothing anywhere the organisation looks.
    manager = await platform.auth("case_manager@demo.example")
    admin = await platform.auth("admin@demo.example")
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
    assert listing.status_code == 200
    ids = {c.get("report_id") for c in listing.json()["items"]}
    assert first["escrow_id"] not in ids and second["escrow_id"] not in ids
    for who in (manager, admin):
        inbox = await platform.gateway.get("/notify/v1/inbox", headers=who)
        assert marker not in inbox.text
    stored = await _everything_stored(platform)
    for secret in (marker, first["receipt_code"], second["receipt_code"]):
        assert secret.encode() not in stored
    # The directory (the gateway) holds the person's email; intake only its blind index.
    assert email.encode() not in await _everything_stored(platform, only="intake")
    # No event about either entry has left intake (so no case, notice, webhook or stat).
    from sqlalchemy import select

    from upstander.intake.models import Outbox

    async with platform.apps["intake"].state.sessionmaker() as session:
        subjects = [row.subject for row in (await session.scalars(select(Outbox))).all()]
    for held in (first, second):
        assert not [s for s in subjects if held["escrow_id"] in s]
    settings = await platform.gateway.get("/intake/v1/escrow-settings", headers=admin)
    assert settings.json() == {"threshold": 2, "expiry_days": 365}

    # Each reporter sees the match with their receipt code alone.
    one, two = (
        await _token(platform, first["receipt_code"]),
        await _token(platform, second["receipt_code"]),
    )
    for headers in (one, two):
        state = await platform.gateway.get("/intake/v1/reporter/escrow", headers=headers)
        assert state.status_code == 200, state.text
        assert state.json()["status"] == "matched"

    # Each decides: release (in the mode they choose).
    released = await platform.gateway.post(
        "/intake/v1/reporter/escrow/release", json={"mode": "anonymous"}, headers=one
    )
    assert released.status_code == 200, released.text
    await platform.drain()
    released = await platform.gateway.post(
        "/intake/v1/reporter/escrow/release",
        json={"mode": "confidential", "reporter": {"name": "Jo", "contact": "jo@example.org"}},
        headers=two,
    )
    assert released.status_code == 200, released.text
    await platform.drain()

    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
    cases = {c["report_id"]: c for c in listing.json()["items"]}
    case_one, case_two = cases[first["escrow_id"]], cases[second["escrow_id"]]
    links = await platform.gateway.get(f"/cases/v1/cases/{case_two['id']}/links", headers=manager)
    assert links.status_code == 200, links.text
    assert [(link["case_id"], link["kind"]) for link in links.json()["items"]] == [
        (case_one["id"], "same_subject")
    ]
    back = await platform.gateway.get(f"/cases/v1/cases/{case_one['id']}/links", headers=manager)
    assert [link["case_id"] for link in back.json()["items"]] == [case_two["id"]]

    # The named person (a case manager) is the subject: they never see either case.
    theirs = await platform.auth(email, password=PASSWORD)
    for case in (case_one, case_two):
        direct = await platform.gateway.get(f"/cases/v1/cases/{case['id']}", headers=theirs)
        assert direct.status_code == 404

    # Each reporter follows their case with the same receipt code.
    for headers, case in ((one, case_one), (two, case_two)):
        mine = await platform.gateway.get("/cases/v1/reporter/case", headers=headers)
        assert mine.status_code == 200, mine.text
        assert mine.json()["number"] == case["number"]
        state = await platform.gateway.get("/intake/v1/reporter/escrow", headers=headers)
        assert state.json()["status"] == "released"

    for record in caplog.records:
        flat = str(record.__dict__)
        assert first["receipt_code"] not in flat and second["receipt_code"] not in flat


async def test_withdrawn_entries_never_match(platform: Platform) -> None:
    target = {"kind": "phone", "value": f"+1 555 {uuid.uuid4().int % 10**7:07d}"}
    gone = await _hold(platform, target, "I changed my mind")
    headers = await _token(platform, gone["receipt_code"])
    withdrawn = await platform.gateway.post("/intake/v1/reporter/escrow/withdraw", headers=headers)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"

    later = await _hold(platform, target, "Someone else")
    state = await platform.gateway.get(
        "/intake/v1/reporter/escrow", headers=await _token(platform, later["receipt_code"])
    )
    assert state.json()["status"] == "waiting"


async def test_a_private_record_proof_checks_out_through_the_gateway(platform: Platform) -> None:
    made = await platform.gateway.post(
        "/intake/v1/records", json={"org": "demo", "entry": {"text": "Tuesday, again."}}
    )
    assert made.status_code == 201, made.text
    pack = made.json()["entry"]
    document = base64.b64decode(pack["document"])
    assert hashlib.sha256(document).hexdigest() == pack["proof"]["sha256"]
    verify = "/intake/v1/records/proofs/verify"
    good = await platform.gateway.post(
        verify, json={"proof": pack["proof"], "document": pack["document"]}
    )
    changed = base64.b64encode(document.replace(b"Tuesday", b"Tuesdax")).decode()
    bad = await platform.gateway.post(verify, json={"proof": pack["proof"], "document": changed})
    assert good.json() == {"valid": True} and bad.json() == {"valid": False}
    wrong = await platform.gateway.post(
        "/intake/v1/records/read", json={"org": "demo", "record_code": "00000-00000-00000-00000"}
    )
    assert wrong.status_code == 404
    spec = await platform.gateway.get("/openapi.json")
    paths = spec.json()["paths"]
    for path in ("/intake/v1/escrow", "/intake/v1/reporter/escrow", "/intake/v1/records/proof"):
        assert path in paths
