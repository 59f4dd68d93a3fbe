"""Evidence on a case: uploads hashed on receipt and sealed in chunks under the case's key,
streamed back byte for byte, a chain of custody per item, the case's door on every route,
4xx problems for bad uploads, and nothing readable left once the case is shredded."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cases_world import Org, auth, problem
from fastapi import FastAPI
from sqlalchemy import LargeBinary, func, select, type_coerce, update

from upstander.cases.app import create_app
from upstander.cases.evidence.service import CHUNK_BYTES
from upstander.cases.models import Case, CaseStatus, EvidenceChunk, EvidenceItem
from upstander.cases.settings import Settings
from upstander.kit.clock import FrozenClock

MIB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n"
FIELDS = {
    "description": "Direct messages the reporter received after the meeting.",
    "source": "screenshot from reporter's phone",
    "collected_at": "2026-11-21T15:00:00+02:00",
}


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def png(size: int) -> bytes:
    return PNG + os.urandom(size - len(PNG))


def evidence_url(case_id: uuid.UUID, *rest: str) -> str:
    return "/".join([f"/cases/v1/cases/{case_id}/evidence", *rest])


async def upload(
    org: Org,
    case_id: uuid.UUID,
    data: bytes,
    *,
    who: str = "handler",
    filename: str = "messages.png",
    content_type: str = "image/png",
    fields: dict[str, str] | None = None,
) -> httpx.Response:
    return await org.client.post(
        evidence_url(case_id),
        files={"file": (filename, data, content_type)},
        data=FIELDS if fields is None else fields,
        headers=org.headers(who),
    )


async def count(app: FastAPI, model: Any, **where: Any) -> int:
    async with app.state.sessionmaker() as session:
        statement = select(func.count()).select_from(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return int(await session.scalar(statement) or 0)


# ----------------------------------------------------------------------------- upload, download


async def test_an_upload_returns_its_sha256_and_downloads_byte_for_byte_across_chunks(
    app: FastAPI, org: Org
) -> None:
    _, case_id = await org.report()
    data = png(2 * MIB + MIB // 2)

    created = await upload(org, case_id, data, filename="../Messages from Sam.png")

    assert created.status_code == 201, created.text
    item = created.json()
    assert item["sha256"] == hashlib.sha256(data).hexdigest()
    assert item["size"] == len(data)
    assert item["content_type"] == "image/png"
    assert item["filename"] == "Messages from Sam.png"
    assert item["description"] == FIELDS["description"]
    assert item["source"] == FIELDS["source"]
    assert item["collected_at"] == "2026-11-21T13:00:00Z"
    assert item["uploaded_by"] == {"kind": "person", "id": str(org.handler)}
    assert created.headers["location"] == evidence_url(case_id, item["id"])
    evidence_id = uuid.UUID(item["id"])
    assert await count(app, EvidenceChunk, evidence_id=evidence_id) == 3  # ≤ 1 MiB each
    async with app.state.sessionmaker() as session:
        blobs = await session.scalars(
            select(type_coerce(EvidenceChunk.data, LargeBinary)).where(
                EvidenceChunk.evidence_id == evidence_id
            )
        )
        assert all(data[:64] not in blob and len(blob) <= CHUNK_BYTES + 64 for blob in blobs)

    download = await org.client.get(
        evidence_url(case_id, item["id"], "content"), headers=org.headers("handler")
    )

    assert download.status_code == 200
    assert download.content == data
    assert hashlib.sha256(download.content).hexdigest() == item["sha256"]
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-length"] == str(len(data))
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["x-content-sha256"] == item["sha256"]
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert download.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"Messages from Sam.png\"; filename*=UTF-8''"
        + quote("Messages from Sam.png", safe="")
    )
    assert download.headers["cache-control"] == "no-store"


async def test_a_download_names_a_non_ascii_file_in_filename_star(org: Org) -> None:
    _, case_id = await org.report()
    created = await upload(
        org, case_id, b"notes", filename="acta<final>.txt", content_type="text/plain"
    )
    renamed = await upload(
        org, case_id, b"notas", filename="reunión.txt", content_type="text/plain"
    )

    first = await org.client.get(
        evidence_url(case_id, created.json()["id"], "content"), headers=org.headers("handler")
    )
    second = await org.client.get(
        evidence_url(case_id, renamed.json()["id"], "content"), headers=org.headers("handler")
    )

    assert first.headers["content-disposition"] == (
        "attachment; filename=\"acta_final_.txt\"; filename*=UTF-8''acta_final_.txt"
    )
    assert second.headers["content-disposition"] == (
        "attachment; filename=\"reuni_n.txt\"; filename*=UTF-8''reuni%C3%B3n.txt"
    )
    assert second.content == b"notas"
    assert second.headers["content-type"] == "text/plain"


async def test_a_type_no_longer_allowed_is_served_as_octet_stream(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()
    created = await upload(org, case_id, b"%PDF-1.7 ...", content_type="application/pdf")
    app.state.settings.evidence_types = ["image/png"]

    download = await org.client.get(
        evidence_url(case_id, created.json()["id"], "content"), headers=org.headers("handler")
    )

    assert download.headers["content-type"] == "application/octet-stream"
    assert download.content == b"%PDF-1.7 ..."


async def test_evidence_pages_oldest_first(org: Org, clock: FrozenClock) -> None:
    _, case_id = await org.report()
    ids = []
    for n in range(3):
        clock.advance(timedelta(minutes=1))
        created = await upload(org, case_id, f"note {n}".encode(), content_type="text/plain")
        ids.append(created.json()["id"])
    handler = org.headers("handler")

    first = await org.client.get(evidence_url(case_id), params={"limit": 2}, headers=handler)
    cursor = first.json()["next_cursor"]
    second = await org.client.get(
        evidence_url(case_id), params={"limit": 2, "cursor": cursor}, headers=handler
    )

    assert [i["id"] for i in first.json()["items"]] == ids[:2]
    assert [i["id"] for i in second.json()["items"]] == ids[2:]
    assert second.json()["next_cursor"] is None
    assert first.json()["items"][0]["description"] == FIELDS["description"]


# ----------------------------------------------------------------------------- custody and audit


async def test_custody_records_upload_view_and_download_with_the_actor(
    org: Org, clock: FrozenClock
) -> None:
    _, case_id = await org.report()
    created = await upload(org, case_id, png(1000))
    evidence_id = created.json()["id"]

    clock.advance(timedelta(minutes=1))
    viewed = await org.client.get(
        evidence_url(case_id, evidence_id), headers=org.headers("reviewer")
    )
    clock.advance(timedelta(minutes=1))
    await org.client.get(
        evidence_url(case_id, evidence_id, "content"), headers=org.headers("handler")
    )
    clock.advance(timedelta(minutes=1))
    again = await org.client.get(evidence_url(case_id, evidence_id), headers=org.headers("handler"))

    handler = {"kind": "person", "id": str(org.handler)}
    reviewer = {"kind": "person", "id": str(org.reviewer)}
    assert [(c["action"], c["actor"]) for c in viewed.json()["custody"]] == [
        ("uploaded", handler),
        ("viewed", reviewer),
    ]
    custody = again.json()["custody"]
    assert [(c["action"], c["actor"]) for c in custody] == [
        ("uploaded", handler),
        ("viewed", reviewer),
        ("downloaded", handler),
        ("viewed", handler),
    ]
    assert [c["at"] for c in custody] == [
        "2026-11-24T09:30:00Z",
        "2026-11-24T09:31:00Z",
        "2026-11-24T09:32:00Z",
        "2026-11-24T09:33:00Z",
    ]
    assert again.json()["sha256"] == created.json()["sha256"]


async def test_listing_evidence_is_a_view_in_each_items_custody(
    org: Org, clock: FrozenClock
) -> None:
    _, case_id = await org.report()
    created = await upload(org, case_id, png(100))
    clock.advance(timedelta(minutes=1))

    await org.client.get(evidence_url(case_id), headers=org.headers("reviewer"))
    clock.advance(timedelta(minutes=1))
    item = await org.client.get(
        evidence_url(case_id, created.json()["id"]), headers=org.headers("handler")
    )

    assert [(c["action"], c["actor"]["id"]) for c in item.json()["custody"]] == [
        ("uploaded", str(org.handler)),
        ("viewed", str(org.reviewer)),
        ("viewed", str(org.handler)),
    ]


async def test_each_evidence_action_is_audited_with_ids_only(org: Org) -> None:
    _, case_id = await org.report()
    created = await upload(org, case_id, png(100))
    evidence_id = created.json()["id"]
    handler = org.headers("handler")
    await org.client.get(evidence_url(case_id), headers=handler)
    await org.client.get(evidence_url(case_id, evidence_id), headers=handler)
    await org.client.get(evidence_url(case_id, evidence_id, "content"), headers=handler)

    trail = await org.client.get(
        "/cases/v1/audit", params={"case_id": str(case_id)}, headers=org.admin(["auditor"])
    )

    entries = [e for e in trail.json()["items"] if e["action"].startswith("evidence.")]
    assert [(e["action"], e["detail"]) for e in entries] == [
        ("evidence.create", {"evidence_id": evidence_id}),
        ("evidence.list", {"evidence_ids": [evidence_id]}),
        ("evidence.read", {"evidence_id": evidence_id}),
        ("evidence.download", {"evidence_id": evidence_id}),
    ]
    assert all(e["actor_id"] == str(org.handler) for e in entries)
    assert FIELDS["description"] not in trail.text and "messages.png" not in trail.text


# ----------------------------------------------------------------------------- who may


async def test_people_kept_from_the_case_get_404_for_its_evidence(
    app: FastAPI, org: Org, mint: Any
) -> None:
    _, case_id = await org.report(involved=["involved"], excluded=["excluded"])
    url = f"/cases/v1/cases/{case_id}"
    assign = await org.client.post(
        f"{url}/assignments",
        json={"person_id": str(org.investigator), "role": "investigator"},
        headers=org.headers("handler"),
    )
    assert assign.status_code == 201, assign.text
    mine = await upload(org, case_id, png(100), who="investigator")
    assert mine.status_code == 201  # an assigned investigator may add evidence
    evidence_id = mine.json()["id"]
    recusal = await org.client.post(f"{url}/recusal", headers=org.headers("investigator"))
    assert recusal.status_code == 201
    other_org = auth(mint(org=uuid.uuid4(), roles=["admin"], sub=uuid.uuid4()))

    kept_out = {
        "involved": org.headers("involved", ["case_manager"]),
        "excluded": org.headers("excluded", ["case_manager"]),
        "above the involved": org.headers("manager"),
        "recused": org.headers("investigator"),
        "another organisation": other_org,
    }
    for who, headers in kept_out.items():
        for response in (
            await org.client.get(evidence_url(case_id), headers=headers),
            await org.client.get(evidence_url(case_id, evidence_id), headers=headers),
            await org.client.get(evidence_url(case_id, evidence_id, "content"), headers=headers),
            await org.client.post(
                evidence_url(case_id),
                files={"file": ("x.png", png(100), "image/png")},
                data=FIELDS,
                headers=headers,
            ),
        ):
            assert response.status_code == 404, (who, response.request.method, response.text)
            problem(response, 404, "not-found")
    assert await count(app, EvidenceItem, case_id=case_id) == 1


async def test_staff_without_a_handler_role_are_refused_before_any_case_is_looked_up(
    org: Org,
) -> None:
    _, case_id = await org.report()
    created = await upload(org, case_id, png(100))
    staff = org.headers("involved", ["staff"])

    for response in (
        await org.client.get(evidence_url(case_id), headers=staff),
        await org.client.get(evidence_url(case_id, created.json()["id"]), headers=staff),
        await org.client.get(evidence_url(case_id, created.json()["id"], "content"), headers=staff),
        await org.client.post(
            evidence_url(case_id),
            files={"file": ("x.png", png(100), "image/png")},
            data=FIELDS,
            headers=staff,
        ),
        await org.client.get(evidence_url(uuid.uuid4()), headers=staff),
    ):
        # Roles that handle no case get the 404 of a hidden case, the same for any case id.
        problem(response, 404, "not-found")


async def test_an_item_of_another_case_is_404(org: Org) -> None:
    _, case_id = await org.report()
    _, other_case = await org.report()
    created = await upload(org, case_id, png(100))
    handler = org.headers("handler")

    for path in ("", "content"):
        response = await org.client.get(
            evidence_url(other_case, created.json()["id"], *([path] if path else [])),
            headers=handler,
        )
        problem(response, 404, "not-found")


# ----------------------------------------------------------------------------- bad uploads


async def test_a_file_of_the_largest_size_passes_and_one_byte_more_is_413(
    app: FastAPI, org: Org
) -> None:
    _, case_id = await org.report()
    limit = app.state.settings.max_evidence_bytes
    assert limit == 10 * MIB  # as intake's attachments

    largest = await upload(org, case_id, png(limit))
    too_large = await upload(org, case_id, png(limit + 1))

    assert largest.status_code == 201, largest.text
    assert largest.json()["size"] == limit
    body = problem(too_large, 413, "payload-too-large")
    assert str(limit) in body["detail"]
    assert await count(app, EvidenceItem, case_id=case_id) == 1
    assert await count(app, EvidenceChunk, case_id=case_id) == 10


async def test_a_body_beyond_the_services_limit_is_413(org: Org) -> None:
    _, case_id = await org.report()

    response = await upload(org, case_id, png(12 * MIB))

    problem(response, 413, "payload-too-large")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"MZ\x90\x00 an executable", "application/x-msdownload"),
        (b"MZ\x90\x00 an executable", "image/png"),
        (b"text with a \x00 byte", "text/plain"),
        (PNG + b"...", "application/octet-stream"),
    ],
)
async def test_a_type_evidence_may_not_have_is_415(
    app: FastAPI, org: Org, data: bytes, content_type: str
) -> None:
    _, case_id = await org.report()

    response = await upload(org, case_id, data, content_type=content_type)

    body = problem(response, 415, "unsupported-media-type")
    assert "image/png" in body["allowed_types"]
    assert await count(app, EvidenceItem, case_id=case_id) == 0


async def test_a_body_that_is_not_multipart_is_415(org: Org) -> None:
    _, case_id = await org.report()

    response = await org.client.post(
        evidence_url(case_id), json=FIELDS, headers=org.headers("handler")
    )

    problem(response, 415, "unsupported-media-type")


async def test_a_missing_file_is_422(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()

    response = await org.client.post(
        evidence_url(case_id),
        data=FIELDS,
        files={"other": ("x.png", png(100), "image/png")},
        headers=org.headers("handler"),
    )
    only_fields = await org.client.post(
        evidence_url(case_id),
        content=b'--b\r\nContent-Disposition: form-data; name="source"\r\n\r\nphone\r\n--b--\r\n',
        headers={**org.headers("handler"), "content-type": "multipart/form-data; boundary=b"},
    )

    assert problem(response, 422, "validation-error")["errors"] == [
        {"field": "body.other", "message": "Unknown field."}
    ]
    fields = {e["field"] for e in problem(only_fields, 422, "validation-error")["errors"]}
    assert fields == {"body.file", "body.description", "body.collected_at"}
    assert await count(app, EvidenceItem, case_id=case_id) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({**FIELDS, "collected_at": "2026-11-21T15:00:00"}, "body.collected_at"),  # no timezone
        ({**FIELDS, "collected_at": "2026-12-24T15:00:00Z"}, "body.collected_at"),  # future
        ({**FIELDS, "collected_at": "yesterday"}, "body.collected_at"),
        ({**FIELDS, "description": "x" * 10_001}, "body.description"),
        ({**FIELDS, "source": " "}, "body.source"),
        ({**FIELDS, "extra": "x"}, "body.extra"),
    ],
)
async def test_invalid_fields_are_422_and_store_nothing(
    app: FastAPI, org: Org, fields: dict[str, str], field: str
) -> None:
    _, case_id = await org.report()

    response = await upload(org, case_id, png(2 * MIB), fields=fields)

    body = problem(response, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == [field]
    assert "x" * 100 not in response.text
    assert await count(app, EvidenceItem, case_id=case_id) == 0
    assert await count(app, EvidenceChunk, case_id=case_id) == 0


async def test_an_empty_file_is_422(org: Org) -> None:
    _, case_id = await org.report()

    response = await upload(org, case_id, b"", content_type="text/plain")

    assert problem(response, 422, "validation-error")["errors"] == [
        {"field": "body.file", "message": "The file is empty."}
    ]


async def test_a_malformed_or_cut_off_body_is_400(org: Org) -> None:
    _, case_id = await org.report()
    headers = {**org.headers("handler"), "content-type": "multipart/form-data; boundary=b"}
    cut_off = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhalf a fi"
    )

    response = await org.client.post(evidence_url(case_id), content=cut_off, headers=headers)
    no_boundary = await org.client.post(
        evidence_url(case_id),
        content=b"x",
        headers={**org.headers("handler"), "content-type": "multipart/form-data"},
    )

    problem(response, 400, "bad-request")
    problem(no_boundary, 400, "bad-request")


# ----------------------------------------------------------------------------- shredding


async def test_a_shredded_case_leaves_no_readable_evidence(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    if not app.state.settings.database_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file itself")
    marker = uuid.uuid4().hex
    file_marker = f"FILE-{marker}".encode()
    description, filename = f"DESCRIPTION-{marker}", f"NAME-{marker}.txt"
    _, case_id = await org.report()
    created = await upload(
        org,
        case_id,
        b"what was said: " + file_marker + b" " * (CHUNK_BYTES + 10) + file_marker,
        filename=filename,
        content_type="text/plain",
        fields={**FIELDS, "description": description, "source": f"SOURCE-{marker}"},
    )
    evidence_id = created.json()["id"]
    handler = org.headers("handler")
    before = await org.client.get(evidence_url(case_id, evidence_id, "content"), headers=handler)
    assert before.content.count(file_marker) == 2

    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(status=CaseStatus.CLOSED, closed_at=clock.now())
        )
    clock.advance(timedelta(days=1461))
    assert await app.state.retention.run_once() == 1

    for url in (
        evidence_url(case_id),
        evidence_url(case_id, evidence_id),
        evidence_url(case_id, evidence_id, "content"),
    ):
        problem(await org.client.get(url, headers=org.admin()), 404, "not-found")
    database = Path(app.state.settings.database_url.split("///", 1)[1])
    raw = b"".join(
        path.read_bytes()
        for path in (database, database.with_name(database.name + "-wal"))
        if path.exists()
    )
    assert len(raw) > 2 * CHUNK_BYTES  # the sealed chunks are in there, unreadable
    for needle in (file_marker, marker.encode(), description.encode(), filename.encode()):
        assert needle not in raw


async def test_evidence_whose_key_was_destroyed_reads_as_null_and_will_not_download(
    app: FastAPI, org: Org
) -> None:
    _, case_id = await org.report()
    created = await upload(org, case_id, png(100))
    evidence_id = created.json()["id"]
    async with app.state.sessionmaker() as session, session.begin():
        await app.state.vault.destroy_key(session, case_id)

    item = await org.client.get(evidence_url(case_id, evidence_id), headers=org.headers("handler"))
    download = await org.client.get(
        evidence_url(case_id, evidence_id, "content"), headers=org.headers("handler")
    )

    assert item.status_code == 200
    body = item.json()
    assert [body[k] for k in ("filename", "sha256", "description", "source")] == [None] * 4
    assert problem(download, 404, "not-found")["detail"] == (
        "This evidence was destroyed with the case's data."
    )


# ----------------------------------------------------------------------------- the contract


def test_the_upload_is_documented_as_multipart_and_the_download_as_binary() -> None:
    spec = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
    base = "/cases/v1/cases/{case_id}/evidence"

    create = spec["paths"][base]["post"]
    assert create["operationId"] == "create_evidence"
    body = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"] == {**body["properties"]["file"], "format": "binary"}
    assert set(body["required"]) == {"file", "description", "source", "collected_at"}
    assert body["properties"]["collected_at"]["format"] == "date-time"
    assert {"413", "415", "422"} <= set(create["responses"])
    download = spec["paths"][base + "/{evidence_id}/content"]["get"]
    assert download["operationId"] == "download_evidence"
    binary = download["responses"]["200"]["content"]["application/octet-stream"]["schema"]
    assert binary == {"type": "string", "format": "binary"}
    assert {op["operationId"] for op in (spec["paths"][base]["get"],)} == {"list_evidence"}
    assert spec["paths"][base + "/{evidence_id}"]["get"]["operationId"] == "get_evidence"


async def test_chunks_out_of_order_are_never_served_whole(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()
    data = png(2 * MIB + 100)
    created = await upload(org, case_id, data)
    evidence_id = uuid.UUID(created.json()["id"])
    async with app.state.sessionmaker() as session, session.begin():  # swap chunks 0 and 1
        chunk = EvidenceChunk.__table__.c
        where = chunk.evidence_id == evidence_id
        await session.execute(update(EvidenceChunk).where(where, chunk.seq == 0).values(seq=-1))
        await session.execute(update(EvidenceChunk).where(where, chunk.seq == 1).values(seq=0))
        await session.execute(update(EvidenceChunk).where(where, chunk.seq == -1).values(seq=1))

    url = evidence_url(case_id, str(evidence_id), "content")
    async with org.client.stream("GET", url, headers=org.headers("handler")) as response:
        received = b"".join([piece async for piece in response.aiter_bytes()])

    # The last chunk is withheld: the body falls short of its Content-Length (a real server
    # drops the connection), and what arrived never matches the announced hash.
    assert response.headers["content-length"] == str(len(data))
    assert len(received) == 2 * CHUNK_BYTES
