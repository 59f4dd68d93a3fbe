"""No clear text of the investigation file at rest or in logs: every write path of a case
(the report and its file, the reporter's identity read with a reason, notes and their
corrections, interviews, evidence, allegations, measures, messages), driven through the
gateway with a unique marker in every free-text field and file, leaves none of the markers in
any database file or log record — while the handlers read them all back, and the signed
export carries them out."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from harness import Platform

MARKERS = {
    "description": "Quetzal-description-5521",
    "location": "Quetzal-location-5522",
    "witness": "Quetzal-witness-5523",
    "outcome": "Quetzal-outcome-5524",
    "reporter_name": "Quetzal-reportername-5525",
    "reporter_contact": "quetzal-contact-5526@example.net",
    "attachment_bytes": "Quetzal-attachbytes-5527",
    "attachment_name": "Quetzal-attachname-5528",
    "reason": "Quetzal-reason-5529 to call the reporter back",
    "note": "Quetzal-note-5530",
    "note_correction": "Quetzal-notefix-5531",
    "interviewee": "Quetzal-interviewee-5532",
    "attendee": "Quetzal-attendee-5533",
    "summary": "Quetzal-summary-5534",
    "statement": "Quetzal-statement-5535",
    "evidence_bytes": "Quetzal-evidencebytes-5536",
    "evidence_name": "Quetzal-evidencename-5537",
    "evidence_description": "Quetzal-evidencedesc-5538",
    "evidence_source": "Quetzal-evidencesource-5539",
    "allegation": "Quetzal-allegation-5540",
    "measure": "Quetzal-measure-5541",
    "message": "Quetzal-message-5542",
}


async def _person_id(platform: Platform, email: str) -> str:
    admin = await platform.auth("admin@demo.example")
    found = await platform.gateway.get(f"/identity/v1/people?email={email}", headers=admin)
    assert found.status_code == 200, found.text
    return str(found.json()["items"][0]["id"])


async def _case_of(platform: Platform, report_id: str, headers: dict[str, str]) -> str:
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=headers)
    assert listing.status_code == 200, listing.text
    [case] = [c for c in listing.json()["items"] if c["report_id"] == report_id]
    return str(case["id"])


async def test_no_field_of_the_investigation_file_is_stored_or_logged_in_the_clear(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    report = {
        "org": "demo",
        "mode": "confidential",
        "description": f"{MARKERS['description']}: he kept touching my back in the van",
        "categories": ["sexual_harassment"],
        "location": MARKERS["location"],
        "witnesses": [{"name": MARKERS["witness"]}],
        "desired_outcome": MARKERS["outcome"],
        "reporter": {"name": MARKERS["reporter_name"], "contact": MARKERS["reporter_contact"]},
    }
    filed = await platform.gateway.post(
        "/intake/v1/reports",
        files=[
            ("report", (None, json.dumps(report), "application/json")),
            (
                "files",
                (
                    f"{MARKERS['attachment_name']}.txt",
                    f"{MARKERS['attachment_bytes']} screenshot transcript".encode(),
                    "text/plain",
                ),
            ),
        ],
    )
    assert filed.status_code == 201, filed.text
    await platform.drain()
    # The file moves from intake into the case file (under the case's key) in the background.
    fetched = 0
    for _ in range(3):
        fetched += await platform.apps["cases"].state.attachment_fetcher.run_once()
        if fetched:
            break
    assert fetched == 1

    manager = await platform.auth("case_manager@demo.example")
    admin = await platform.auth("admin@demo.example")
    case_id = await _case_of(platform, filed.json()["report_id"], manager)
    base = f"/cases/v1/cases/{case_id}"
    manager_id = await _person_id(platform, "case_manager@demo.example")
    staff_id = await _person_id(platform, "staff@demo.example")

    async def ok(method: str, url: str, expected: int = 201, **kwargs: object) -> dict:
        response = await platform.gateway.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == expected, (url, response.text)
        return dict(response.json())

    await ok(
        "POST",
        f"{base}/assignments",
        json={"person_id": manager_id, "role": "case_manager"},
        headers=admin,
    )
    identity = await ok(
        "GET",
        f"{base}/reporter-identity",
        expected=200,
        params={"reason": MARKERS["reason"]},
        headers=manager,
    )
    assert MARKERS["reporter_name"] in json.dumps(identity)
    note = await ok("POST", f"{base}/notes", json={"body": MARKERS["note"]}, headers=manager)
    await ok(
        "POST",
        f"{base}/notes/{note['id']}/versions",
        json={"body": MARKERS["note_correction"], "reason": "Typo in the date."},
        headers=manager,
    )
    held_at = (platform.clock.now() - timedelta(hours=2)).astimezone(UTC).isoformat()
    await ok(
        "POST",
        f"{base}/interviews",
        json={
            "interviewee": {"name": MARKERS["interviewee"]},
            "role": "respondent",
            "held_at": held_at,
            "attendees": {"person_ids": [], "names": [MARKERS["attendee"]]},
            "summary": MARKERS["summary"],
            "statement": MARKERS["statement"],
        },
        headers=manager,
    )
    evidence = await ok(
        "POST",
        f"{base}/evidence",
        files={
            "file": (
                f"{MARKERS['evidence_name']}.txt",
                f"{MARKERS['evidence_bytes']} rota".encode(),
                "text/plain",
            )
        },
        data={
            "description": MARKERS["evidence_description"],
            "source": MARKERS["evidence_source"],
            "collected_at": datetime.now(UTC).isoformat(),
        },
        headers=manager,
    )
    assert len(evidence["sha256"]) == 64
    await ok(
        "POST",
        f"{base}/allegations",
        json={
            "category": "sexual_harassment",
            "description": MARKERS["allegation"],
            "subject_person_ids": [staff_id],
        },
        headers=manager,
    )
    await ok(
        "POST",
        f"{base}/interim-measures",
        json={
            "kind": "no_contact",
            "affects": "subject",
            "starts_on": date.today().isoformat(),
            "approved_by": manager_id,
            "notes": MARKERS["measure"],
        },
        headers=manager,
    )
    await ok("POST", f"{base}/messages", json={"body": MARKERS["message"]}, headers=manager)
    await platform.drain()

    # The handlers read everything back, and the export carries it out.
    export = await platform.gateway.get(f"{base}/export", headers=admin)
    assert export.status_code == 200, export.text
    with zipfile.ZipFile(io.BytesIO(export.content)) as bundle:
        exported = b"".join(bundle.read(name) for name in bundle.namelist())
    for key in ("description", "note", "note_correction", "statement", "evidence_bytes"):
        assert MARKERS[key].encode() in exported, key

    # ...but no log record and no database file holds any of them.
    for record in caplog.records:
        text = record.getMessage() + str(record.__dict__)
        for key, marker in MARKERS.items():
            assert marker not in text, (key, record.name)
    # Database files only: dev mode's mail folder holds the emails sent, and the notice to a
    # confidential reporter is addressed to their contact (its body holds no content).
    files = [path for path in platform.directory.rglob("*.db*") if path.is_file()]
    if not files:
        pytest.skip("the raw-file check reads SQLite files (this run is on PostgreSQL)")
    for app in platform.apps.values():
        async with app.state.engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in files:
        if not path.exists():
            continue
        raw = path.read_bytes()
        for key, marker in MARKERS.items():
            assert marker.encode() not in raw, (key, path.name)
