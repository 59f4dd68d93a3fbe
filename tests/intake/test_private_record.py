"""Private records (docs/escrow.md): sealed under a key derived from the record code, read,
added to and deleted with it only, signed time proofs that verify (and fail on a changed
byte), and a report made from a record carrying its proven time."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import select, text

from upstander.intake.escrow.models import PrivateRecord, PrivateRecordEntry
from upstander.intake.forms.service import ensure_org
from upstander.intake.models import DataKey, Model, Outbox
from upstander.intake.records import sealing

RECORDS = "/intake/v1/records"
SLUG = "demo"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60


async def register(app: FastAPI, slug: str = SLUG) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with app.state.sessionmaker() as session:
        await ensure_org(session, org_id, slug, slug.title())
        await session.commit()
    return org_id


def b64url(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


async def make(client: httpx.AsyncClient, words: str, **entry: Any) -> dict[str, Any]:
    response = await client.post(RECORDS, json={"org": SLUG, "entry": {"text": words, **entry}})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def opened(code: str) -> dict[str, str]:
    return {"org": SLUG, "record_code": code}


async def raw_rows(app: FastAPI) -> bytes:
    out = bytearray()
    async with app.state.engine.connect() as conn:
        for table in Model.metadata.sorted_tables:
            for row in (await conn.execute(text(f'SELECT * FROM "{table.name}"'))).all():
                for value in row:
                    is_bytes = isinstance(value, bytes | bytearray | memoryview)
                    out += bytes(value) if is_bytes else str(value).encode()
    return bytes(out)


async def test_a_record_is_read_added_to_and_deleted_with_its_code_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    created = await make(
        client,
        "He followed me to the car park.",
        occurred_at="2026-11-20",
        location="Car park",
        attachments=[
            {
                "filename": "screen.png",
                "content_type": "image/png",
                "data_base64": base64.b64encode(PNG).decode(),
            }
        ],
    )
    code = created["record_code"]

    added = await client.post(
        f"{RECORDS}/entries", json={**opened(code), "entry": {"text": "It happened again."}}
    )
    assert added.status_code == 201, added.text
    read = await client.post(f"{RECORDS}/read", json=opened(code.lower().replace("-", " ")))
    assert read.status_code == 200, read.text
    entries = read.json()["entries"]
    assert [e["text"] for e in entries] == ["He followed me to the car park.", "It happened again."]
    assert entries[0]["location"] == "Car park" and entries[0]["occurred_at"] == "2026-11-20"
    assert base64.b64decode(entries[0]["attachments"][0]["data_base64"]) == PNG
    assert entries[0]["attachments"][0]["sha256"] == hashlib.sha256(PNG).hexdigest()

    deleted = await client.post(f"{RECORDS}/delete", json=opened(code))
    assert deleted.status_code == 204
    assert (await client.post(f"{RECORDS}/read", json=opened(code))).status_code == 404
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(PrivateRecord))).all() == []
        assert (await session.scalars(select(PrivateRecordEntry))).all() == []
        assert await session.get(DataKey, uuid.UUID(created["record_id"])) is None


async def test_a_wrong_code_or_organisation_reads_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    await register(app, "elsewhere")
    code = (await make(client, "Only mine."))["record_code"]
    wrong = "00000-00000-00000-00000"

    answers = [
        await client.post(f"{RECORDS}/read", json=opened(wrong)),
        await client.post(f"{RECORDS}/read", json={"org": "elsewhere", "record_code": code}),
        await client.post(f"{RECORDS}/read", json=opened("not a code at all")),
        await client.post(f"{RECORDS}/entries", json={**opened(wrong), "entry": {"text": "x"}}),
        await client.post(f"{RECORDS}/delete", json=opened(wrong)),
        await client.post(f"{RECORDS}/proof", json=opened(wrong)),
    ]

    assert [a.status_code for a in answers] == [404] * 6
    assert len({a.json()["detail"] for a in answers}) == 1
    assert "Only mine" not in "".join(a.text for a in answers)
    assert (await client.post(f"{RECORDS}/read", json=opened(code))).status_code == 200


def test_a_wrong_code_fails_the_key_wrap() -> None:
    record_id = uuid.uuid4()
    spec, key = sealing.new_code_key("A" * 20)
    wrapped = sealing.wrap_data_key(key, record_id, b"k" * 32)

    assert (
        sealing.unwrap_data_key(sealing.code_key("A" * 20, spec), record_id, wrapped) == b"k" * 32
    )
    with pytest.raises(sealing.WrongCode):
        sealing.unwrap_data_key(sealing.code_key("B" * 20, spec), record_id, wrapped)
    assert spec.startswith("scrypt$32768$8$1$")


async def test_the_raw_database_holds_none_of_the_record_s_text(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await register(app)
    marker = f"marker{uuid.uuid4().hex[:12]}"
    created = await make(client, f"{marker} said it", location=f"{marker} office")
    code = created["record_code"]
    await client.post(
        f"{RECORDS}/entries", json={**opened(code), "entry": {"text": f"more {marker}"}}
    )

    raw = await raw_rows(app)
    assert marker.encode() not in raw
    assert code.encode() not in raw and code.replace("-", "").encode() not in raw
    if database_url.startswith("sqlite"):
        with open(database_url.split("///", 1)[1], "rb") as handle:
            assert marker.encode() not in handle.read()
    # Even with the deployment's vault (an operator with the database and the KEK), the
    # stored entry is ciphertext under the code's key.
    async with app.state.sessionmaker() as session:
        row = (await session.scalars(select(PrivateRecordEntry))).first()
    assert row is not None and row.content is not None
    assert marker.encode() not in bytes(row.content)
    # No event, and no log line with the words or the code.
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(Outbox))).all() == []
    logged = "\n".join(
        f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records
    )
    assert marker not in logged and code not in logged


async def test_a_proof_verifies_and_a_changed_byte_does_not(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    created = await make(client, "It happened on Tuesday.")
    key = (await client.get(f"{RECORDS}/signing-key")).json()
    public = Ed25519PublicKey.from_public_bytes(b64url(key["jwk"]["x"]))
    proofs = await client.post(f"{RECORDS}/proof", json=opened(created["record_code"]))
    assert proofs.status_code == 200, proofs.text
    pack = proofs.json()["proofs"][0]
    assert pack == created["entry"]
    assert proofs.json()["public_key"] == key["jwk"]
    proof, document = pack["proof"], base64.b64decode(pack["document"])

    # Offline, with nothing but the published key: the document's hash and the signature.
    assert hashlib.sha256(document).hexdigest() == proof["sha256"]
    statement = {k: v for k, v in proof.items() if k != "signature"}
    signed = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    public.verify(b64url(proof["signature"]), signed)
    assert json.loads(document)["text"] == "It happened on Tuesday."
    assert proof["time"] == json.loads(document)["written_at"]

    changed = bytearray(document)
    changed[10] ^= 0x01
    assert hashlib.sha256(bytes(changed)).hexdigest() != proof["sha256"]
    later = {**statement, "time": "2027-01-01T00:00:00+00:00"}
    with pytest.raises(InvalidSignature):
        public.verify(
            b64url(proof["signature"]),
            json.dumps(later, sort_keys=True, separators=(",", ":")).encode(),
        )

    verify = f"{RECORDS}/proofs/verify"
    good = await client.post(verify, json={"proof": proof, "document": pack["document"]})
    bad = await client.post(
        verify, json={"proof": proof, "document": base64.b64encode(bytes(changed)).decode()}
    )
    forged = await client.post(verify, json={"proof": later, "document": pack["document"]})
    assert good.json() == {"valid": True}
    assert bad.json() == {"valid": False}
    assert forged.json() == {"valid": False}


async def test_a_record_becomes_a_report_carrying_its_proven_time(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    created = await make(
        client,
        "First time.",
        attachments=[
            {
                "filename": "a.png",
                "content_type": "image/png",
                "data_base64": base64.b64encode(PNG).decode(),
            }
        ],
    )
    code = created["record_code"]
    written = json.loads(base64.b64decode(created["entry"]["document"]))["written_at"]
    await client.post(f"{RECORDS}/entries", json={**opened(code), "entry": {"text": "Again."}})

    refused = await client.post(f"{RECORDS}/report", json={**opened(code), "mode": "confidential"})
    assert refused.status_code == 422
    response = await client.post(
        f"{RECORDS}/report",
        json={
            **opened(code),
            "mode": "confidential",
            "reporter": {"name": "Jo", "contact": "jo@example.org"},
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["receipt_code"] and body["recorded_at"].replace("Z", "+00:00") == written
    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(Outbox))).all()
    data = [
        app.state.events.envelope(r)["data"] for r in rows if r.type == "upstander.report.submitted"
    ]
    assert len(data) == 1
    assert data[0]["recorded_at"] == written
    assert "First time." in data[0]["description"] and "Again." in data[0]["description"]
    assert data[0]["attachments"][0]["filename"] == "a.png"
    assert data[0]["mode"] == "confidential"
    # The record stays the reporter's until they delete it.
    assert (await client.post(f"{RECORDS}/read", json=opened(code))).status_code == 200


async def test_an_identified_report_from_a_record_needs_a_staff_token(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    org_id = await register(app)
    code = (await make(client, "Mine."))["record_code"]

    anonymous = await client.post(f"{RECORDS}/report", json={**opened(code), "mode": "identified"})
    staff = await client.post(
        f"{RECORDS}/report",
        json={**opened(code), "mode": "identified"},
        headers={"Authorization": f"Bearer {mint(org=org_id, roles=['staff'])}"},
    )

    assert anonymous.status_code == 401
    assert staff.status_code == 201, staff.text
    assert staff.json()["receipt_code"] is None


async def test_attachments_are_checked(app: FastAPI, client: httpx.AsyncClient) -> None:
    await register(app)
    bad = await client.post(
        RECORDS,
        json={
            "org": SLUG,
            "entry": {
                "text": "x",
                "attachments": [
                    {
                        "filename": "a.exe",
                        "content_type": "application/x-msdownload",
                        "data_base64": "TVo=",
                    }
                ],
            },
        },
    )
    not_b64 = await client.post(
        RECORDS,
        json={
            "org": SLUG,
            "entry": {
                "text": "x",
                "attachments": [
                    {"filename": "a.png", "content_type": "image/png", "data_base64": "%%"}
                ],
            },
        },
    )
    assert bad.status_code == 415
    assert not_b64.status_code == 422
