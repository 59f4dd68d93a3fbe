"""Helpers of the timeline and export tests: a case file with one record of every kind, each
a minute after the last (so the timeline's order is known), and ZIP rewriting for tampering."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cases_world import Org
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.models import (
    AttachmentFileStatus,
    CaseAttachment,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    RetaliationCheckin,
)
from upstander.kit.clock import FrozenClock

PNG = b"\x89PNG\r\n\x1a\n"
MESSAGE_TEXT = "When did it happen? (a handler's question)"
NOTE_TEXT = "Called the field office lead; the rota confirms both shifts."
ATTACHMENT_BYTES = b"%PDF-1.4 the reporter's file"


def png(size: int) -> bytes:
    return PNG + os.urandom(size - len(PNG))


@dataclass
class CaseFile:
    """A case with one of everything, and what went into it."""

    report_id: uuid.UUID
    case_id: uuid.UUID
    attachment_id: uuid.UUID
    evidence_id: str = ""
    evidence_bytes: bytes = b""
    # Timeline kinds in the order the records were made (ties: by kind, as the timeline).
    kinds: list[str] = field(default_factory=list)


async def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def store_attachment_file(
    app: FastAPI, case_id: uuid.UUID, attachment_id: uuid.UUID, data: bytes, clock: FrozenClock
) -> None:
    """As if the fetcher had brought the reporter's file from intake: sealed, in one chunk."""
    async with app.state.sessionmaker() as session, session.begin():
        attachment = await session.scalar(
            select(CaseAttachment).where(CaseAttachment.attachment_id == attachment_id)
        )
        assert attachment is not None
        now = clock.now()
        # Opening the case queued the file (pending); the fetcher would now store it.
        file = await session.scalar(
            select(CaseAttachmentFile).where(CaseAttachmentFile.case_attachment_id == attachment.id)
        )
        if file is None:
            file = CaseAttachmentFile(
                org_id=attachment.org_id,
                case_attachment_id=attachment.id,
                case_id=case_id,
                next_attempt_at=now,
                created_at=now,
            )
            session.add(file)
        file.status = AttachmentFileStatus.STORED
        file.size, file.chunk_count = len(data), 1
        file.sha256 = hashlib.sha256(data).hexdigest()
        file.stored_at = file.updated_at = now
        session.add(
            CaseAttachmentChunk(
                org_id=attachment.org_id,
                case_attachment_id=attachment.id,
                case_id=case_id,
                seq=0,
                data=data,
                created_at=now,
            )
        )


async def build_case_file(app: FastAPI, org: Org, clock: FrozenClock) -> CaseFile:
    """One record of every kind the timeline shows, a minute apart."""
    attachment_id = uuid.uuid4()
    report_id, case_id = await org.report(
        attachments=[
            {
                "attachment_id": str(attachment_id),
                "filename": "Note from him.pdf",
                "content_type": "application/pdf",
                "size": len(ATTACHMENT_BYTES),
            }
        ]
    )
    await store_attachment_file(app, case_id, attachment_id, ATTACHMENT_BYTES, clock)
    made = CaseFile(report_id, case_id, attachment_id)
    made.kinds += ["case_opened", "report_attachment"]
    url = f"/cases/v1/cases/{case_id}"
    client = org.client

    # Fresh tokens for every call: the clock moves past a token's five minutes.
    def handler() -> dict[str, str]:
        return org.headers("handler")

    def investigator() -> dict[str, str]:
        return org.headers("investigator")

    def tick() -> None:
        clock.advance(timedelta(minutes=1))

    tick()  # leaving `new` also tells the reporter, by a system message at the same instant
    await _ok(await client.post(f"{url}/transitions", json={"to": "triage"}, headers=handler()))
    made.kinds += ["message", "transition"]
    tick()
    await _ok(await client.post(f"{url}/messages", json={"body": MESSAGE_TEXT}, headers=handler()))
    made.kinds.append("message")
    tick()
    await _ok(
        await client.post(
            "/cases/v1/reporter/messages",
            json={"body": "The 20th."},
            headers=org.reporter(report_id),
        )
    )
    made.kinds.append("message")
    tick()
    await _ok(
        await client.post(
            f"{url}/assignments",
            json={"person_id": str(org.investigator), "role": "investigator"},
            headers=handler(),
        )
    )
    made.kinds.append("assignment")
    tick()
    await _ok(
        await client.post(
            f"{url}/transitions", json={"to": "investigating"}, headers=investigator()
        )
    )
    made.kinds.append("transition")
    tick()
    await _ok(
        await client.post(
            f"{url}/interim-measures",
            json={
                "kind": "no_contact",
                "starts_on": "2026-11-25",
                "approved_by": str(org.handler),
                "notes": "Separate shifts.",
            },
            headers=handler(),
        )
    )
    made.kinds.append("interim_measure")
    tick()
    allegation = await _ok(
        await client.post(
            f"{url}/allegations",
            json={"category": "sexual_harassment", "description": "Comments at the office"},
            headers=investigator(),
        )
    )
    made.kinds.append("allegation")
    tick()
    await _ok(
        await client.put(
            f"{url}/allegations/{allegation['id']}/finding",
            json={"finding": "substantiated", "rationale": "Two witnesses agree"},
            headers=investigator(),
        ),
        200,
    )
    made.kinds.append("finding")
    tick()
    action = await _ok(
        await client.post(
            f"{url}/corrective-actions",
            json={"description": "Supervisor training", "due_at": "2026-12-24T09:30:00Z"},
            headers=handler(),
        )
    )
    made.kinds.append("corrective_action")
    tick()
    note = await _ok(await client.post(f"{url}/notes", json={"body": NOTE_TEXT}, headers=handler()))
    made.kinds.append("note")
    tick()
    await _ok(
        await client.post(
            f"{url}/notes/{note['id']}/versions",
            json={"body": NOTE_TEXT + " Both evening.", "reason": "Both were evening shifts."},
            headers=handler(),
        )
    )
    made.kinds.append("note_version")
    tick()
    await _ok(
        await client.post(
            f"{url}/interviews",
            json={
                "interviewee": {"name": "Sam Ortiz"},
                "role": "witness",
                "held_at": (clock.now() - timedelta(hours=1)).isoformat(),
                "summary": "Saw the comments at the office.",
            },
            headers=investigator(),
        )
    )
    made.kinds.append("interview")
    tick()
    made.evidence_bytes = png(3000)
    evidence = await _ok(
        await client.post(
            f"{url}/evidence",
            files={"file": ("../Screen shot é.png", made.evidence_bytes, "image/png")},
            data={
                "description": "Direct messages",
                "source": "reporter's phone",
                "collected_at": "2026-11-21T15:00:00+02:00",
            },
            headers=handler(),
        )
    )
    made.evidence_id = evidence["id"]
    made.kinds.append("evidence")
    tick()
    download = await client.get(f"{url}/evidence/{made.evidence_id}/content", headers=handler())
    assert download.status_code == 200, download.text
    made.kinds.append("custody")
    tick()
    await _ok(
        await client.post(f"{url}/corrective-actions/{action['id']}/completion", headers=handler()),
        200,
    )
    made.kinds.append("corrective_action_done")
    tick()
    await add_answered_checkin(app, org, case_id, clock)
    made.kinds += ["checkin", "checkin_answered"]
    return made


async def add_answered_checkin(
    app: FastAPI, org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    """A retaliation check-in asked now and answered a minute later (as the scheduler and
    the reporter would, without closing the case first)."""
    asked = clock.now()
    async with app.state.sessionmaker() as session, session.begin():
        session.add(
            RetaliationCheckin(
                org_id=org.id,
                case_id=case_id,
                case_closed_at=asked - timedelta(days=30),
                offset_days=30,
                due_at=asked,
                created_at=asked,
                updated_at=asked,
                answered_at=asked + timedelta(minutes=1),
                retaliation=False,
            )
        )
    clock.advance(timedelta(minutes=1))


# ----------------------------------------------------------------------------- ZIP surgery


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezip(bundle: bytes, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> bytes:
    """The bundle with its members as `change` returns them (order kept, new ones last)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in change(members(bundle)).items():
            archive.writestr(name, data)
    return out.getvalue()


def flip_one_byte(data: bytes) -> bytes:
    """`data` with its middle byte changed (or one byte, for an empty member)."""
    if not data:
        return b"\x00"
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
