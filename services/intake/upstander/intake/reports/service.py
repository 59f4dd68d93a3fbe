"""Reports: submit one, attach files to it later, verify its receipt code. No FastAPI here:
plain values in, domain errors out; functions only flush.

An anonymous or confidential reporter's actions are stored with their time floored to the
hour (`upstander.kit.clock.for_reporter`): the report, its attachments, its data key and the
events about it. Only identified reports keep the exact moment."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.directory.service import foreign_people
from upstander.intake.escrow.receipts import receipt_row_query as escrow_receipt_row
from upstander.intake.events import ATTACHMENT_ADDED, REPORT_SUBMITTED
from upstander.intake.hashing import slow_hash
from upstander.intake.models import (
    Attachment,
    Report,
    ReportingForm,
    ReportMode,
    ReportStatus,
)
from upstander.intake.reports import receipts
from upstander.intake.reports.files import NewAttachment
from upstander.intake.reports.schemas import ReportIn
from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.clock import for_reporter
from upstander.kit.contracts import AttachmentAdded, AttachmentMeta, ReportSubmitted
from upstander.kit.crypto import DataKeyMissing, Vault
from upstander.kit.errors import Conflict, Forbidden, NotFound, ProblemError, Unauthorized
from upstander.kit.events import EventBus

NO_SUCH_REPORT = "No such report."
NO_SUCH_RECEIPT = "No report matches this organisation and receipt code."


class UnknownCategories(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"


class ForeignPeople(ProblemError):
    """The report names, by id, people of another organisation."""

    status, slug, title = 422, "validation-error", "Validation error"


@dataclass(frozen=True)
class SubmittedReport:
    report: Report
    # In display form (`K7QW2-9XMDA-...`); None for identified reports. Exists only here.
    receipt_code: str | None
    attachments: list[Attachment]


def identified_reporter(principal: Principal | None, org_id: uuid.UUID) -> uuid.UUID:
    """The person making an identified report: the caller, a staff member of `org_id`."""
    if principal is None:
        raise Unauthorized("An identified report is made with your staff token.")
    if principal.kind != PrincipalKind.STAFF or principal.org_id != org_id:
        raise Forbidden("Identified reports are made by the organisation's own staff.")
    try:
        person_id = principal.person_id
    except ValueError:
        person_id = None
    if person_id is None:
        raise Forbidden("Identified reports are made by the organisation's own staff.")
    return person_id


def _check_categories(form: ReportingForm, categories: Sequence[str]) -> None:
    known = {str(category.get("key")) for category in form.categories}
    errors = [
        {"field": f"body.categories.{index}", "message": "Not a category of this form."}
        for index, key in enumerate(categories)
        if key not in known
    ]
    if errors:
        raise UnknownCategories("The request did not validate.", errors=errors)


NOT_OF_THIS_ORG = "Not a person of this organisation."


async def _check_people(session: AsyncSession, form: ReportingForm, body: ReportIn) -> None:
    """422 when the report names, by id, a person of another organisation (involved, witness
    or excluded), each listed by position. Ids intake's directory does not hold are let
    through (a report is never held up by a late directory event); cases checks again."""
    named: list[tuple[str, uuid.UUID]] = [
        (f"body.people_involved.{index}.person_id", someone.person_id)
        for index, someone in enumerate(body.people_involved)
        if someone.person_id is not None
    ]
    named += [
        (f"body.witnesses.{index}.person_id", someone.person_id)
        for index, someone in enumerate(body.witnesses)
        if someone.person_id is not None
    ]
    named += [
        (f"body.excluded_person_ids.{index}", person_id)
        for index, person_id in enumerate(body.excluded_person_ids)
    ]
    foreign = await foreign_people(session, form.org_id, {person_id for _, person_id in named})
    errors = [
        {"field": field, "message": NOT_OF_THIS_ORG}
        for field, person_id in named
        if person_id in foreign
    ]
    if errors:
        raise ForeignPeople("The request did not validate.", errors=errors)


def _content(body: ReportIn, reporter_person_id: uuid.UUID | None) -> dict[str, Any]:
    """Everything the reporter wrote, as stored (encrypted) and sent to cases."""
    written = body.model_dump(mode="json", exclude={"org", "mode", "reporter"})
    if body.reporter is not None:
        reporter: dict[str, Any] | None = body.reporter.model_dump(mode="json")
    elif reporter_person_id is not None:
        reporter = {"person_id": str(reporter_person_id)}
    else:
        reporter = None
    return {**written, "reporter": reporter}


def attachment_summary(attachment: Attachment) -> AttachmentMeta:
    return AttachmentMeta(
        attachment_id=attachment.id,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
    )


def submitted_event_data(
    report: Report, content: dict[str, Any], org_slug: str, attachments: Sequence[Attachment]
) -> dict[str, Any]:
    """`upstander.report.submitted` data: the shared contract (upstander.kit.contracts), which
    cases reads with the same model."""
    return ReportSubmitted(
        report_id=report.id,
        org_id=report.org_id,
        org_slug=org_slug,
        mode=report.mode,
        submitted_at=report.submitted_at,
        language=content["language"],
        categories=content["categories"],
        description=content["description"],
        occurred_at=content["occurred_at"],
        location=content["location"],
        people_involved=content["people_involved"],
        witnesses=content["witnesses"],
        desired_outcome=content["desired_outcome"],
        excluded_person_ids=content["excluded_person_ids"],
        reporter=content["reporter"],
        attachments=[attachment_summary(a) for a in attachments],
        recorded_at=content.get("recorded_at"),
    ).model_dump(mode="json")


def _new_attachment(
    report_id: uuid.UUID, org_id: uuid.UUID, file: NewAttachment, now: datetime
) -> Attachment:
    return Attachment(
        id=uuid.uuid4(),
        org_id=org_id,
        report_id=report_id,
        filename=file.filename,
        content_type=file.content_type,
        size=file.size,
        sha256=file.sha256,
        # EncryptedText holds text: the bytes travel as base64 inside the ciphertext.
        content=base64.b64encode(file.data).decode("ascii"),
        created_at=now,
        updated_at=now,
    )


async def submit_report(
    session: AsyncSession,
    *,
    vault: Vault,
    events: EventBus,
    form: ReportingForm,
    body: ReportIn,
    reporter_person_id: uuid.UUID | None,
    files: Sequence[NewAttachment],
    receipt_key: str,
    now: datetime,
    recorded_at: datetime | None = None,
) -> SubmittedReport:
    """Store a report (and its files) encrypted under a new data key of its own, and emit
    `upstander.report.submitted` in the same transaction. Anonymous and confidential reports
    get a receipt code; only its lookup key and slow hash are kept. `now` is floored to the
    hour for them (see the module)."""
    now = for_reporter(now, body.mode)
    if (body.mode == ReportMode.IDENTIFIED) != (reporter_person_id is not None):
        raise ValueError("identified reports, and only they, name the reporting person")
    _check_categories(form, body.categories)
    await _check_people(session, form, body)

    code: str | None = None
    lookup: str | None = None
    hashed: str | None = None
    if body.mode != ReportMode.IDENTIFIED:
        code = receipts.new_code()
        lookup = receipts.lookup_key(code, receipt_key)
        hashed = await slow_hash(receipts.hash_code, code)

    report_id = uuid.uuid4()
    await vault.create_key(session, org_id=form.org_id, owner_id=report_id, created_at=now)
    content = _content(body, reporter_person_id)
    if recorded_at is not None:  # made from a private record: its signed time
        content["recorded_at"] = recorded_at.isoformat()
    report = Report(
        id=report_id,
        org_id=form.org_id,
        mode=body.mode.value,
        status=ReportStatus.SUBMITTED.value,
        submitted_at=now,
        receipt_lookup=lookup,
        receipt_hash=hashed,
        content=content,
        created_at=now,
        updated_at=now,
    )
    session.add(report)
    await session.flush()  # the report row first: attachments refer to it
    attachments = [_new_attachment(report.id, report.org_id, file, now) for file in files]
    session.add_all(attachments)
    await events.publish(
        session,
        REPORT_SUBMITTED,
        f"report/{report.id}",
        submitted_event_data(report, content, form.org_slug, attachments),
        org_id=form.org_id,
        at=now,
    )
    await session.flush()
    return SubmittedReport(
        report=report,
        receipt_code=receipts.display(code) if code is not None else None,
        attachments=attachments,
    )


async def add_attachment(
    session: AsyncSession,
    *,
    vault: Vault,
    events: EventBus,
    report_id: uuid.UUID,
    org_id: uuid.UUID | None,
    file: NewAttachment,
    max_per_report: int,
    now: datetime,
) -> Attachment:
    """Attach a file to a report (its reporter, later) and emit
    `upstander.report.attachment_added` with the file's metadata, never its bytes. Times are
    the hour's unless the report is identified (see the module)."""
    row = (
        await session.execute(
            select(Report.id, Report.org_id, Report.mode).where(
                Report.id == report_id, Report.org_id == org_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(NO_SUCH_REPORT)
    now = for_reporter(now, row.mode)
    try:
        await vault.fetch_dek(report_id)
    except DataKeyMissing:
        raise NotFound(NO_SUCH_REPORT) from None  # shredded
    count = await session.scalar(
        select(func.count()).select_from(Attachment).where(Attachment.report_id == report_id)
    )
    if (count or 0) >= max_per_report:
        raise Conflict(f"A report can have at most {max_per_report} attachments.")
    attachment = _new_attachment(row.id, row.org_id, file, now)
    session.add(attachment)
    await events.publish(
        session,
        ATTACHMENT_ADDED,
        f"report/{report_id}",
        AttachmentAdded(
            report_id=report_id,
            org_id=row.org_id,
            **attachment_summary(attachment).model_dump(),
        ).model_dump(mode="json"),
        org_id=row.org_id,
        at=now,
    )
    await session.flush()
    return attachment


async def attachment_for_cases(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    report_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> tuple[Attachment, bytes]:
    """An attachment and its bytes, for the cases service to keep under the case's key.
    `NotFound` for an unknown attachment, one of another report or organisation, or one whose
    report was shredded (its content reads back as None)."""
    attachment = await session.scalar(
        select(Attachment).where(
            Attachment.id == attachment_id,
            Attachment.report_id == report_id,
            Attachment.org_id == org_id,
        )
    )
    if attachment is None or attachment.content is None:
        raise NotFound("No such attachment.")
    return attachment, base64.b64decode(attachment.content)


async def verify_receipt(
    session: AsyncSession, *, org_slug: str, receipt_code: str, receipt_key: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """(report id, org id) for a receipt code of an organisation. Any mismatch (malformed
    code, unknown code, code of another organisation) is the same `NotFound`, after the same
    scrypt work."""
    code = receipts.normalise(receipt_code)
    stored: str | None = None
    found: tuple[uuid.UUID, uuid.UUID] | None = None
    if code is not None:
        row = (
            await session.execute(
                select(Report.id, Report.org_id, Report.receipt_hash, ReportingForm.org_slug)
                .join(ReportingForm, ReportingForm.org_id == Report.org_id)
                .where(Report.receipt_lookup == receipts.lookup_key(code, receipt_key))
            )
        ).first()
        if row is None:  # an escrow entry's code (docs/escrow.md) opens the entry
            lookup = receipts.lookup_key(code, receipt_key)
            row = (await session.execute(escrow_receipt_row(lookup))).first()
        if row is not None and row.org_slug == org_slug.strip().lower():
            stored, found = row.receipt_hash, (row.id, row.org_id)
    matches = await slow_hash(receipts.verify_code, code if stored else None, stored)
    if not matches or found is None:
        raise NotFound(NO_SUCH_RECEIPT)
    return found
