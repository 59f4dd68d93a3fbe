"""What the reporter gave, for the people who handle the case: the report (without a
confidential reporter's identity), the attachments and their bytes, and the identity itself
as a separate read with a recorded reason. Plain async functions taking a session; they only
flush."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.cases.models import (
    AssignmentRole,
    AttachmentFileStatus,
    Case,
    CaseAssignment,
    CaseAttachment,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    CaseReport,
    ReporterIdentityRead,
    ReporterMode,
)
from upstander.cases.report.schemas import (
    AttachmentOut,
    PersonMentionOut,
    ReporterIdentityOut,
    ReportOut,
)
from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.clock import for_reporter
from upstander.kit.crypto import DataKeyMissing, Vault
from upstander.kit.errors import Conflict, Forbidden, NotFound, ProblemError

# Pieces a file is stored in: a download decrypts and sends one at a time.
CHUNK_BYTES = 1024 * 1024
# Types a download is labelled with as stored; anything else goes out as
# application/octet-stream. The same list intake accepts by default, none of them active
# content a browser would run.
DOWNLOAD_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "application/pdf",
        "text/plain",
        "audio/mpeg",
        "audio/mp4",
        "video/mp4",
    }
)
OCTET_STREAM = "application/octet-stream"
# Assigned in these roles, a person may read a confidential reporter's identity.
IDENTITY_READERS = (AssignmentRole.CASE_MANAGER, AssignmentRole.REVIEWER)

NO_SUCH_ATTACHMENT = "No such attachment on this case."


class Shredded(ProblemError):
    """The case's data key was destroyed: what the reporter gave can never be read again."""

    status, slug, title = 410, "shredded", "Shredded"


class NoReporterIdentity(Conflict):
    """The report is anonymous (or holds no identity): there is nobody to reveal."""

    slug, title = "no-reporter-identity", "No reporter identity"


class AttachmentNotAvailable(Conflict):
    """The file has not arrived from intake yet, or intake no longer has it."""

    slug, title = "attachment-not-available", "Attachment not available"


# ----------------------------------------------------------------------------- the report


async def ensure_not_shredded(vault: Vault, case: Case) -> None:
    """`Shredded` (410) when the case's data key is gone: its report, file names and files
    can never be read again. (A case deleted past retention is a tombstone, 404 before this.)"""
    try:
        await vault.fetch_dek(case.id)
    except DataKeyMissing:
        raise Shredded("This case's content was destroyed (crypto-shredded).") from None


async def _report_row(session: AsyncSession, case: Case) -> CaseReport:
    report = await session.scalar(
        select(CaseReport).where(CaseReport.case_id == case.id, CaseReport.org_id == case.org_id)
    )
    if report is None:
        raise NotFound("This case has no report.")
    return report


def _content(report: CaseReport) -> dict[str, Any]:
    if report.content is None:  # the case's data key is destroyed
        raise Shredded("This case's content was destroyed (crypto-shredded).")
    return report.content


def _mentions(value: Any) -> list[PersonMentionOut]:
    if not isinstance(value, list):
        return []
    return [PersonMentionOut.model_validate(item) for item in value if isinstance(item, dict)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def read_report(session: AsyncSession, case: Case) -> ReportOut:
    """The report as handlers read it. The `reporter` part of the sealed content (a
    confidential reporter's name and contact) is left out on purpose: see `read_identity`."""
    content = _content(await _report_row(session, case))
    categories = content.get("categories")
    return ReportOut(
        case_id=case.id,
        report_id=case.report_id,
        source=str(content.get("source") or "report"),
        follows_up=_text(content.get("follows_up")),
        reporter_mode=case.reporter_mode,
        received_at=case.received_at,
        description=_text(content.get("description")),
        occurred_at=_text(content.get("occurred_at")),
        location=_text(content.get("location")),
        people_involved=_mentions(content.get("people_involved")),
        witnesses=_mentions(content.get("witnesses")),
        desired_outcome=_text(content.get("desired_outcome")),
        categories=[str(c) for c in categories] if isinstance(categories, list) else [],
        language=_text(content.get("language")),
        attachments=await list_attachments(session, case),
    )


# ----------------------------------------------------------------------------- attachments


async def list_attachments(session: AsyncSession, case: Case) -> list[AttachmentOut]:
    """The reporter's files on the case, oldest first, with whether each can be downloaded."""
    rows = await session.execute(
        select(CaseAttachment, CaseAttachmentFile.status)
        .outerjoin(CaseAttachmentFile, CaseAttachmentFile.case_attachment_id == CaseAttachment.id)
        .where(CaseAttachment.case_id == case.id, CaseAttachment.org_id == case.org_id)
        .order_by(CaseAttachment.created_at, CaseAttachment.id)
    )
    items = []
    for attachment, status in rows:
        # No file row yet means queued but not fetched: the fetcher picks it up.
        state = status or AttachmentFileStatus.PENDING
        items.append(
            AttachmentOut(
                id=attachment.attachment_id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                status=state,
                available=state == AttachmentFileStatus.STORED,
                created_at=attachment.created_at,
            )
        )
    return items


@dataclass(frozen=True)
class Download:
    """A stored file ready to stream: the headers' values and where its chunks are."""

    attachment_id: uuid.UUID
    case_attachment_id: uuid.UUID
    filename: str
    media_type: str
    size: int
    chunk_count: int


async def open_download(session: AsyncSession, case: Case, attachment_id: uuid.UUID) -> Download:
    """The stored file of one of the case's attachments. `NotFound` for an attachment of
    another case; `AttachmentNotAvailable` while its bytes are not here; `Shredded` when the
    case's key is gone."""
    row = (
        await session.execute(
            select(CaseAttachment, CaseAttachmentFile)
            .outerjoin(
                CaseAttachmentFile, CaseAttachmentFile.case_attachment_id == CaseAttachment.id
            )
            .where(
                CaseAttachment.case_id == case.id,
                CaseAttachment.org_id == case.org_id,
                CaseAttachment.attachment_id == attachment_id,
            )
        )
    ).first()
    if row is None:
        raise NotFound(NO_SUCH_ATTACHMENT)
    attachment, file = row
    if file is None or file.status != AttachmentFileStatus.STORED:
        state = file.status if file is not None else AttachmentFileStatus.PENDING
        raise AttachmentNotAvailable(
            "The file has not arrived from intake yet; try again later."
            if state == AttachmentFileStatus.PENDING
            else "Intake no longer has this file.",
            attachment_status=state.value,
        )
    return Download(
        attachment_id=attachment.attachment_id,
        case_attachment_id=attachment.id,
        filename=str(attachment.filename or "attachment"),
        media_type=download_type(attachment.content_type),
        size=file.size,
        chunk_count=file.chunk_count,
    )


async def stream_chunks(
    sessionmaker: async_sessionmaker[AsyncSession], download: Download
) -> AsyncIterator[bytes]:
    """The file's bytes, one decrypted chunk at a time, each read in a short session of its
    own (no transaction stays open while a slow client reads)."""
    for seq in range(download.chunk_count):
        async with sessionmaker() as session:
            data = await session.scalar(
                select(CaseAttachmentChunk.data).where(
                    CaseAttachmentChunk.case_attachment_id == download.case_attachment_id,
                    CaseAttachmentChunk.seq == seq,
                )
            )
        if data is None:
            # Shredded (or deleted) while streaming: stop short rather than send a wrong file.
            raise RuntimeError("attachment chunk missing or shredded mid-download")
        yield bytes(data)


def download_type(stored: str | None) -> str:
    """The stored type only when it is on the allow-list, else application/octet-stream."""
    value = (stored or "").split(";", 1)[0].strip().lower()
    return value if value in DOWNLOAD_TYPES else OCTET_STREAM


_UNSAFE_FILENAME = re.compile(r"[^\w .()+-]+", re.UNICODE)


def content_disposition(filename: str, fallback: str = "attachment") -> str:
    """`attachment` with an ASCII `filename` and an RFC 6266 / RFC 8187 `filename*`: no path,
    no control characters, no quotes or semicolons, at most 200 characters."""
    name = re.split(r"[\\/]", filename)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = _UNSAFE_FILENAME.sub("_", name).strip(" ._")[:200] or fallback
    # The plain `filename` for old clients: accents folded (é → e), anything else dropped.
    folded = unicodedata.normalize("NFKD", name)
    ascii_name = folded.encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()+-]", "_", ascii_name).strip(" ._") or fallback
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def new_file_rows(
    attachments: Sequence[CaseAttachment], *, now: datetime
) -> list[CaseAttachmentFile]:
    """Pending file rows for attachments that have none yet (the fetcher brings the bytes)."""
    return [
        CaseAttachmentFile(
            org_id=attachment.org_id,
            case_attachment_id=attachment.id,
            case_id=attachment.case_id,
            status=AttachmentFileStatus.PENDING,
            attempts=0,
            gone_answers=0,
            next_attempt_at=now,
            size=0,
            chunk_count=0,
            created_at=now,
            updated_at=now,
        )
        for attachment in attachments
    ]


async def queue_attachment_files(session: AsyncSession, case: Case, *, now: datetime) -> int:
    """Give every attachment of the case without a file row a pending one (idempotent, in
    the caller's transaction: the event that brought the attachment and its queued fetch
    commit together, so nothing is lost). Returns how many were queued. Anonymous and
    confidential reports keep the hour only, like the rest of what their delivery writes."""
    now = for_reporter(now, case.reporter_mode)
    await session.flush()
    missing = list(
        await session.scalars(
            select(CaseAttachment)
            .outerjoin(
                CaseAttachmentFile, CaseAttachmentFile.case_attachment_id == CaseAttachment.id
            )
            .where(CaseAttachment.case_id == case.id, CaseAttachmentFile.id.is_(None))
        )
    )
    rows = new_file_rows(missing, now=now)
    session.add_all(rows)
    await session.flush()
    return len(rows)


# ----------------------------------------------------------------------------- identity


async def read_identity(
    session: AsyncSession, principal: Principal, case: Case, *, reason: str, now: datetime
) -> ReporterIdentityOut:
    """Who the reporter is, for a person assigned to the case as case manager or reviewer
    (`Forbidden` for anyone else, whatever their role); the read is recorded with its reason
    sealed under the case's key. `NoReporterIdentity` for anonymous reports."""
    try:
        person_id = principal.person_id if principal.kind == PrincipalKind.STAFF else None
    except ValueError:  # a staff token whose subject is not a person id
        person_id = None
    if person_id is None:
        raise Forbidden("Only a person assigned to the case may read the reporter's identity.")
    assigned = await session.scalar(
        select(CaseAssignment.id).where(
            CaseAssignment.case_id == case.id,
            CaseAssignment.person_id == person_id,
            CaseAssignment.role.in_(IDENTITY_READERS),
        )
    )
    if assigned is None:
        raise Forbidden(
            "Only the case manager or reviewer assigned to this case may read the reporter's "
            "identity."
        )
    if case.reporter_mode == ReporterMode.ANONYMOUS:
        raise NoReporterIdentity("The report is anonymous: there is no identity to read.")
    report = await _report_row(session, case)
    reporter = _content(report).get("reporter") or {}
    if not isinstance(reporter, dict):
        reporter = {}
    name, contact = _text(reporter.get("name")), _text(reporter.get("contact"))
    directory_id = case.reporter_person_id
    if case.reporter_mode == ReporterMode.CONFIDENTIAL and not (name or contact):
        raise NoReporterIdentity("No identity was recorded with this report.")
    if case.reporter_mode == ReporterMode.IDENTIFIED and directory_id is None:
        raise NoReporterIdentity("No identity was recorded with this report.")
    read = ReporterIdentityRead(
        id=uuid.uuid4(),
        org_id=case.org_id,
        case_id=case.id,
        case_report_id=report.id,
        person_id=person_id,
        reason=reason,
        created_at=now,
    )
    session.add(read)
    await session.flush()
    confidential = case.reporter_mode == ReporterMode.CONFIDENTIAL
    return ReporterIdentityOut(
        case_id=case.id,
        reporter_mode=case.reporter_mode,
        name=name if confidential else None,
        contact=contact if confidential else None,
        person_id=directory_id if not confidential else None,
        read_id=read.id,
    )
