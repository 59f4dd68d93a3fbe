"""Private records: make one, open it with its code, add to it, read it, prove it, delete it,
turn it into a report. No FastAPI here; functions only flush; nothing logs.

The plain columns say only which organisation a record belongs to and the hour it was made
and added to; the signed exact times are inside the sealed entries."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.escrow.models import PrivateRecord, PrivateRecordEntry
from upstander.intake.escrow.service import validated_report
from upstander.intake.hashing import slow_hash
from upstander.intake.models import ReportingForm, ReportMode
from upstander.intake.records import sealing
from upstander.intake.records.schemas import RecordEntryIn, RecordFileIn, RecordToReportIn
from upstander.intake.reports import receipts
from upstander.intake.reports import service as reports
from upstander.intake.reports.files import NewAttachment, check_file
from upstander.intake.reports.schemas import DESCRIPTION_MAX
from upstander.intake.settings import Settings
from upstander.kit.clock import coarse
from upstander.kit.crypto import SealedBytes, Vault
from upstander.kit.errors import Conflict, NotFound, ProblemError
from upstander.kit.events import EventBus

NO_SUCH_RECORD = "No record matches this organisation and record code."
MAX_ENTRIES = 200


class InvalidFile(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"


@dataclass
class OpenRecord:
    record: PrivateRecord
    dek: bytes


@dataclass
class Entry:
    entry_id: uuid.UUID
    document: dict[str, Any]
    files: list[str]  # base64, in the document's order
    proof: dict[str, Any]

    @property
    def document_bytes(self) -> bytes:
        return sealing.canonical(self.document)


def _files(entry: RecordEntryIn, settings: Settings) -> list[NewAttachment]:
    checked: list[NewAttachment] = []
    for position, upload in enumerate(entry.attachments):
        try:
            data = base64.b64decode(upload.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidFile(
                "The request did not validate.",
                errors=[
                    {
                        "field": f"body.entry.attachments.{position}.data_base64",
                        "message": "Not base64.",
                    }
                ],
            ) from None
        checked.append(_check(upload, data, settings))
    return checked


def _check(upload: RecordFileIn, data: bytes, settings: Settings) -> NewAttachment:
    return check_file(
        upload.filename,
        upload.content_type,
        data,
        max_bytes=settings.max_attachment_bytes,
        allowed_types=settings.attachment_types,
    )


def _exact(now: datetime) -> str:
    return now.astimezone(UTC).replace(microsecond=0).isoformat()


async def _add_entry(
    session: AsyncSession,
    opened: OpenRecord,
    signer: sealing.Signer,
    entry_in: RecordEntryIn,
    files: Sequence[NewAttachment],
    now: datetime,
) -> Entry:
    record = opened.record
    position = (
        await session.scalar(
            select(func.count())
            .select_from(PrivateRecordEntry)
            .where(PrivateRecordEntry.record_id == record.id)
        )
    ) or 0
    if position >= MAX_ENTRIES:
        raise Conflict(f"A record can have at most {MAX_ENTRIES} entries.")
    entry_id = uuid.uuid4()
    written = _exact(now)
    document = {
        "record_id": str(record.id),
        "entry_id": str(entry_id),
        "position": position,
        "written_at": written,
        "text": entry_in.text,
        "occurred_at": entry_in.occurred_at.isoformat() if entry_in.occurred_at else None,
        "location": entry_in.location,
        "attachments": [
            {
                "filename": f.filename,
                "content_type": f.content_type,
                "size": f.size,
                "sha256": f.sha256,
            }
            for f in files
        ],
    }
    proof = signer.prove(
        record_id=record.id,
        entry_id=entry_id,
        document=sealing.canonical(document),
        time=written,
    )
    entry = Entry(
        entry_id=entry_id,
        document=document,
        files=[base64.b64encode(f.data).decode("ascii") for f in files],
        proof=proof,
    )
    inner = sealing.seal(
        opened.dek,
        record.id,
        entry_id,
        {"document": document, "files": entry.files, "proof": proof},
    )
    session.add(
        PrivateRecordEntry(
            id=entry_id,
            org_id=record.org_id,
            record_id=record.id,
            position=position,
            created_at=coarse(now),
            content=SealedBytes(inner, record.id),
        )
    )
    await session.flush()
    return entry


async def create(
    session: AsyncSession,
    *,
    vault: Vault,
    signer: sealing.Signer,
    form: ReportingForm,
    entry_in: RecordEntryIn,
    settings: Settings,
    now: datetime,
) -> tuple[OpenRecord, str, Entry]:
    """A new record with its first entry. Returns it, its code (display form, shown once)
    and the entry with its proof."""
    files = _files(entry_in, settings)
    code = receipts.new_code()
    spec, key = await slow_hash(sealing.new_code_key, code)
    record_id = uuid.uuid4()
    dek = secrets.token_bytes(sealing.KEY_BYTES)
    hour = coarse(now)
    await vault.create_key(session, org_id=form.org_id, owner_id=record_id, created_at=hour)
    record = PrivateRecord(
        id=record_id,
        org_id=form.org_id,
        created_at=hour,
        record_lookup=sealing.lookup_key(code, settings.receipt_key),
        kdf=spec,
        wrapped_key=sealing.wrap_data_key(key, record_id, dek),
    )
    session.add(record)
    await session.flush()
    opened = OpenRecord(record, dek)
    entry = await _add_entry(session, opened, signer, entry_in, files, now)
    return opened, receipts.display(code), entry


async def open_record(
    session: AsyncSession, *, org_slug: str, typed_code: str, receipt_key: str
) -> OpenRecord:
    """The record this code opens, with its data key. Any mismatch (malformed, unknown,
    another organisation's) is the same `NotFound`, after the same key derivation."""
    code = receipts.normalise(typed_code)
    record: PrivateRecord | None = None
    if code is not None:
        record = await session.scalar(
            select(PrivateRecord)
            .join(ReportingForm, ReportingForm.org_id == PrivateRecord.org_id)
            .where(
                PrivateRecord.record_lookup == sealing.lookup_key(code, receipt_key),
                ReportingForm.org_slug == org_slug.strip().lower(),
            )
        )
    if record is None or code is None:
        if code is not None:  # a well-formed code costs the same found or not
            await slow_hash(sealing.decoy_key)
        raise NotFound(NO_SUCH_RECORD)
    key = await slow_hash(sealing.code_key, code, record.kdf)
    try:
        dek = sealing.unwrap_data_key(key, record.id, bytes(record.wrapped_key))
    except sealing.WrongCode:
        raise NotFound(NO_SUCH_RECORD) from None
    return OpenRecord(record, dek)


async def add(
    session: AsyncSession,
    *,
    opened: OpenRecord,
    signer: sealing.Signer,
    entry_in: RecordEntryIn,
    settings: Settings,
    now: datetime,
) -> Entry:
    return await _add_entry(session, opened, signer, entry_in, _files(entry_in, settings), now)


async def entries(session: AsyncSession, opened: OpenRecord) -> list[Entry]:
    rows = (
        await session.scalars(
            select(PrivateRecordEntry)
            .where(PrivateRecordEntry.record_id == opened.record.id)
            .order_by(PrivateRecordEntry.position)
        )
    ).all()
    out: list[Entry] = []
    for row in rows:
        if row.content is None:
            continue  # shredded
        value = sealing.unseal(opened.dek, opened.record.id, row.id, bytes(row.content))
        out.append(Entry(row.id, value["document"], value["files"], value["proof"]))
    return out


async def delete_record(session: AsyncSession, *, vault: Vault, opened: OpenRecord) -> None:
    """Delete the record: its rows, and its vault data key (so no backup can be read)."""
    record_id = opened.record.id
    await session.execute(
        delete(PrivateRecordEntry).where(PrivateRecordEntry.record_id == record_id)
    )
    await session.execute(delete(PrivateRecord).where(PrivateRecord.id == record_id))
    await vault.destroy_key(session, record_id)
    await session.flush()


async def to_report(
    session: AsyncSession,
    *,
    vault: Vault,
    events: EventBus,
    opened: OpenRecord,
    form: ReportingForm,
    body: RecordToReportIn,
    reporter_person_id: uuid.UUID | None,
    settings: Settings,
    now: datetime,
) -> tuple[reports.SubmittedReport, datetime]:
    """Submit a report made of the record's entries; it carries the first entry's signed
    time (`recorded_at`)."""
    written = await entries(session, opened)
    if not written:
        raise NotFound(NO_SUCH_RECORD)
    parts = [f"[{e.document['written_at']}] {e.document['text']}" for e in written]
    description = "\n\n".join(parts)[:DESCRIPTION_MAX]
    occurred = next((e.document["occurred_at"] for e in written if e.document["occurred_at"]), None)
    location = next((e.document["location"] for e in written if e.document["location"]), None)
    files: list[NewAttachment] = []
    for e in written:
        for meta, data in zip(e.document["attachments"], e.files, strict=True):
            files.append(
                NewAttachment(meta["filename"], meta["content_type"], base64.b64decode(data))
            )
    if len(files) > settings.max_attachments_per_report:
        raise Conflict(
            f"A report can have at most {settings.max_attachments_per_report} attachments; "
            "this record holds more."
        )
    report_in = validated_report(
        {
            "org": form.org_slug,
            "mode": body.mode.value,
            "description": description,
            "categories": body.categories,
            "occurred_at": occurred,
            "location": location,
            "people_involved": [p.model_dump(mode="json") for p in body.people_involved],
            "witnesses": [w.model_dump(mode="json") for w in body.witnesses],
            "desired_outcome": body.desired_outcome,
            "excluded_person_ids": [str(p) for p in body.excluded_person_ids],
            "reporter": body.reporter.model_dump(mode="json") if body.reporter else None,
            "language": body.language.value,
        }
    )
    recorded_at = datetime.fromisoformat(written[0].document["written_at"])
    submitted = await reports.submit_report(
        session,
        vault=vault,
        events=events,
        form=form,
        body=report_in,
        reporter_person_id=reporter_person_id if body.mode == ReportMode.IDENTIFIED else None,
        files=files,
        receipt_key=settings.receipt_key,
        now=now,
        recorded_at=recorded_at,
    )
    return submitted, recorded_at
