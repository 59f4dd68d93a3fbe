"""Export a whole case file as one signed ZIP bundle (the format is in `bundle.py` and
docs/export.md), and the deployment's export keys.

The bundle is written into a temporary file, one member at a time (files stream chunk by
chunk), inside the request's transaction, so it is one consistent reading of the case; the
route then streams the file out. Each part of the case file is one *section*: an async
function writing its members. A new kind of record is one more function in `SECTIONS`.

What is left out on purpose: a confidential reporter's name and contact (read separately,
with a recorded reason, at `.../reporter-identity`; the export holds the report as handlers
read it) and the people the case is hidden from (restrictions).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.assignments.schemas import AssignmentOut, ShareOut
from upstander.cases.assignments.service import list_assignments
from upstander.cases.audit.schemas import AuditEntryOut
from upstander.cases.cases.schemas import CaseOut
from upstander.cases.cases.service import acting_person, actor_of
from upstander.cases.checkins.schemas import CheckinOut
from upstander.cases.checkins.service import list_checkins
from upstander.cases.evidence.schemas import Actor, CustodyOut, EvidenceDetail
from upstander.cases.evidence.service import (
    custody_of,
    evidence_for_case,
    iter_evidence_bytes,
    record_custody,
)
from upstander.cases.export.bundle import BundleWriter, SigningKey, parse_retired_keys, public_jwk
from upstander.cases.export.bundle import sanitise_filename as safe_name
from upstander.cases.interviews.schemas import InterviewDetail
from upstander.cases.interviews.service import interviews_for_case
from upstander.cases.measures.schemas import ActionOut, MeasureOut
from upstander.cases.measures.service import list_actions, list_measures
from upstander.cases.messages.schemas import MessageOut
from upstander.cases.models import (
    AttachmentFileStatus,
    AuditEntry,
    Case,
    CaseAssignment,
    CaseAttachment,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    CaseShare,
    CustodyAction,
    EvidenceCustody,
    EvidenceItem,
    Message,
)
from upstander.cases.notes.schemas import NoteDetail
from upstander.cases.notes.service import notes_for_case
from upstander.cases.report.service import ensure_not_shredded, read_report
from upstander.cases.settings import Settings
from upstander.cases.workflow.schemas import AllegationOut, TransitionOut
from upstander.cases.workflow.service import list_allegations, list_transitions
from upstander.kit.auth import Principal, PrincipalKind, Role
from upstander.kit.crypto import Vault
from upstander.kit.errors import Forbidden, NotFound

AUDIT_BATCH = 1000
MAY_NOT_EXPORT = (
    "Exporting a case takes the reviewer or admin role, or a case manager assigned to it."
)


# ----------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class ExportKeys:
    """The key that signs new bundles, and every public key still published."""

    signing: SigningKey
    published: tuple[dict[str, str], ...]


@functools.lru_cache(maxsize=8)
def _keys(seed: str, kid: str, retired: str) -> ExportKeys:
    signing = SigningKey.from_seed(seed, kid or None)
    published = [signing.jwk()]
    published += [
        public_jwk(key, retired_kid)
        for retired_kid, key in parse_retired_keys(retired).items()
        if retired_kid != signing.kid
    ]
    return ExportKeys(signing=signing, published=tuple(published))


def export_keys(settings: Settings) -> ExportKeys:
    """The deployment's export keys, from its settings (parsed once per distinct setting)."""
    return _keys(
        settings.export_signing_key, settings.export_signing_key_id, settings.export_retired_keys
    )


# ----------------------------------------------------------------------------- who may export


async def check_exportable(
    session: AsyncSession, principal: Principal, case: Case, vault: Vault
) -> None:
    """`Forbidden` unless the caller may export the case (reviewers and admins; a case
    manager only while assigned to it); `Shredded` (410) once its data key is destroyed. The
    case itself comes through `visible_case` (a tombstone or a hidden case is 404 before)."""
    roles, person_id = principal.roles, principal.person_id
    if principal.kind == PrincipalKind.CLIENT and not principal.roles:
        # A client granted `cases:export` exports what the person who registered it may.
        owner = await acting_person(session, principal)
        roles, person_id = (owner.roles, owner.id) if owner else (frozenset(), None)
    if not roles & {Role.REVIEWER, Role.ADMIN}:
        assigned = None
        if Role.CASE_MANAGER in roles and person_id is not None:
            assigned = await session.scalar(
                select(CaseAssignment.id)
                .where(
                    CaseAssignment.case_id == case.id,
                    CaseAssignment.person_id == person_id,
                )
                .limit(1)
            )
        if assigned is None:
            raise Forbidden(MAY_NOT_EXPORT)
    await ensure_not_shredded(vault, case)


# ----------------------------------------------------------------------------- sections


@dataclass
class Export:
    """What every section gets: the case, the request's session and the bundle being written."""

    session: AsyncSession
    case: Case
    principal: Principal
    writer: BundleWriter
    now: datetime

    def items(self, path: str, items: list[Any], **extra: Any) -> None:
        """A JSON member `{"case_id", "items": [...]}` of response models (or plain values)."""
        self.writer.add_json(
            path,
            {
                "case_id": str(self.case.id),
                **extra,
                "items": [_plain(item) for item in items],
            },
        )


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


Section = Callable[[Export], Awaitable[None]]


async def case_file(export: Export) -> None:
    case = export.case
    export.writer.add_json(
        "case.json",
        {
            **CaseOut.model_validate(case).model_dump(mode="json"),
            "legal_hold_reason": case.legal_hold_reason,
            "deleted_at": case.deleted_at.isoformat() if case.deleted_at else None,
        },
    )


async def _attachment_chunks(
    session: AsyncSession, case_attachment_id: uuid.UUID, count: int
) -> AsyncIterator[bytes]:
    for seq in range(count):
        data = await session.scalar(
            select(CaseAttachmentChunk.data).where(
                CaseAttachmentChunk.case_attachment_id == case_attachment_id,
                CaseAttachmentChunk.seq == seq,
            )
        )
        if data is None:
            raise RuntimeError("a stored attachment chunk is missing or unreadable")
        yield bytes(data)


async def report(export: Export) -> None:
    """`report.json` (the report as handlers read it, with its attachments' metadata) and the
    reporter's stored files under `report/attachments/<attachment id>/<file name>`."""
    session, case = export.session, export.case
    try:
        content: dict[str, Any] | None = (await read_report(session, case)).model_dump(mode="json")
    except NotFound:
        content = None  # a case with no report row (nothing the reporter wrote)
    files: dict[str, str] = {}
    stored = await session.execute(
        select(CaseAttachment.attachment_id, CaseAttachment.filename, CaseAttachmentFile)
        .join(CaseAttachmentFile, CaseAttachmentFile.case_attachment_id == CaseAttachment.id)
        .where(
            CaseAttachment.case_id == case.id,
            CaseAttachment.org_id == case.org_id,
            CaseAttachmentFile.status == AttachmentFileStatus.STORED,
        )
        .order_by(CaseAttachment.created_at, CaseAttachment.id)
    )
    for attachment_id, filename, file in stored.all():
        path = f"report/attachments/{attachment_id}/{safe_name(filename, 'attachment')}"
        await export.writer.add_stream(
            path, _attachment_chunks(session, file.case_attachment_id, file.chunk_count)
        )
        files[str(attachment_id)] = path
    if content is not None:
        for attachment in content.get("attachments", []):
            attachment["file"] = files.get(attachment["id"])
    export.writer.add_json("report.json", {"case_id": str(case.id), "report": content})


async def messages(export: Export) -> None:
    rows = await export.session.scalars(
        select(Message)
        .where(Message.org_id == export.case.org_id, Message.case_id == export.case.id)
        .order_by(Message.created_at, Message.id)
    )
    export.items("messages.json", [MessageOut.model_validate(m) for m in rows])


async def transitions(export: Export) -> None:
    rows = await list_transitions(export.session, export.case)
    export.items("transitions.json", [TransitionOut.model_validate(t) for t in rows])


async def allegations(export: Export) -> None:
    """Allegations with their findings (finding, rationale, who and when)."""
    rows = await list_allegations(export.session, export.case)
    export.items("allegations.json", [AllegationOut.model_validate(a) for a in rows])


async def assignments(export: Export) -> None:
    session, case = export.session, export.case
    shares = await session.scalars(
        select(CaseShare)
        .where(CaseShare.org_id == case.org_id, CaseShare.case_id == case.id)
        .order_by(CaseShare.created_at, CaseShare.id)
    )
    export.items(
        "assignments.json",
        [AssignmentOut.model_validate(a) for a in await list_assignments(session, case)],
        shares=[ShareOut.model_validate(s).model_dump(mode="json") for s in shares],
    )


async def actions(export: Export) -> None:
    """Interim measures and corrective actions."""
    session, case = export.session, export.case
    export.writer.add_json(
        "actions.json",
        {
            "case_id": str(case.id),
            "interim_measures": [
                MeasureOut.model_validate(m).model_dump(mode="json")
                for m in await list_measures(session, case)
            ],
            "corrective_actions": [
                ActionOut.model_validate(a).model_dump(mode="json")
                for a in await list_actions(session, case)
            ],
        },
    )


async def checkins(export: Export) -> None:
    rows = await list_checkins(export.session, export.case)
    export.items("checkins.json", [CheckinOut.model_validate(c) for c in rows])


async def notes(export: Export) -> None:
    """Every note with every version of its text."""
    rows = await notes_for_case(export.session, export.case)
    export.items("notes.json", [NoteDetail.of(note) for note in rows])


async def interviews(export: Export) -> None:
    """Every interview with every version of its record."""
    rows = await interviews_for_case(export.session, export.case)
    export.items("interviews.json", [InterviewDetail.of(interview) for interview in rows])


def _custody(entry: EvidenceCustody) -> CustodyOut:
    return CustodyOut(
        id=entry.id,
        action=entry.action,
        actor=Actor(kind=entry.actor_kind, id=entry.actor_id),
        at=entry.created_at,
        note=entry.note,
    )


def _evidence_detail(item: EvidenceItem, custody: list[EvidenceCustody]) -> EvidenceDetail:
    return EvidenceDetail(
        id=item.id,
        case_id=item.case_id,
        filename=item.filename,
        content_type=item.content_type,
        size=item.size,
        sha256=item.sha256,
        description=item.description,
        source=item.source,
        collected_at=item.collected_at,
        uploaded_by=Actor(kind=item.uploaded_by_kind, id=item.uploaded_by_id),
        uploaded_at=item.created_at,
        custody=[_custody(entry) for entry in custody],
    )


async def evidence(export: Export) -> None:
    """Each item's file under `evidence/<id>/<file name>`, and `evidence.json`: every item's
    metadata and whole chain of custody, which first gains this export's `exported` entry."""
    session, writer = export.session, export.writer
    items = await evidence_for_case(session, export.case)
    for item in items:
        await record_custody(session, item, export.principal, CustodyAction.EXPORTED, export.now)
    described = []
    for item in items:
        path = f"evidence/{item.id}/{safe_name(item.filename, 'evidence')}"
        # The stream checks the bytes against the hash taken on upload, and stops otherwise.
        await writer.add_stream(path, iter_evidence_bytes(session, item))
        detail = _evidence_detail(item, await custody_of(session, item))
        described.append({**detail.model_dump(mode="json"), "file": path})
    export.items("evidence.json", described)


async def _audit_json(session: AsyncSession, case: Case) -> AsyncIterator[bytes]:
    """`audit.json`, written batch by batch: a case's trail grows with every read."""
    yield f'{{\n  "case_id": "{case.id}",\n  "items": ['.encode()
    after, first = 0, True
    while True:
        rows = list(
            await session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.org_id == case.org_id,
                    AuditEntry.case_id == case.id,
                    AuditEntry.seq > after,
                )
                .order_by(AuditEntry.seq)
                .limit(AUDIT_BATCH)
            )
        )
        for entry in rows:
            text = json.dumps(
                AuditEntryOut.model_validate(entry).model_dump(mode="json"),
                ensure_ascii=False,
                sort_keys=True,
            )
            yield (("\n    " if first else ",\n    ") + text).encode("utf-8")
            first = False
        if len(rows) < AUDIT_BATCH:
            break
        after = rows[-1].seq
    yield b"\n  ]\n}\n"


async def audit(export: Export) -> None:
    """The case's audit entries in chain order, this export's `case.export` included. Each
    keeps its `seq`, `prev_hash` and `hash`: `prev_hash` points into the organisation's whole
    chain (other cases' entries in between are not the case's to give)."""
    await export.writer.add_stream(
        "audit.json", _audit_json(export.session, export.case), compress=True
    )


# In order; the audit trail last, so it holds everything this export recorded.
SECTIONS: tuple[Section, ...] = (
    case_file,
    report,
    messages,
    transitions,
    allegations,
    assignments,
    actions,
    checkins,
    notes,
    interviews,
    evidence,
    audit,
)


# ----------------------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class Written:
    export_id: uuid.UUID
    manifest: bytes
    filename: str


async def write_bundle(
    session: AsyncSession,
    case: Case,
    principal: Principal,
    *,
    key: SigningKey,
    export_id: uuid.UUID,
    now: datetime,
    target: IO[bytes],
) -> Written:
    """Write the case's bundle into `target` (a seekable binary file): every section, then
    the signed manifest. Only reads (and flushes what sections record)."""
    writer = BundleWriter(target, written_at=now)
    export = Export(session=session, case=case, principal=principal, writer=writer, now=now)
    try:
        for section in SECTIONS:
            await section(export)
    except BaseException:
        writer.abort()
        raise
    kind, actor_id = actor_of(principal)
    manifest = writer.finish(
        {
            "export_id": str(export_id),
            "case_id": str(case.id),
            "case_number": case.number,
            "org_id": str(case.org_id),
            "exported_at": now.isoformat(),
            "exporter": {"kind": kind, "id": actor_id, "roles": sorted(principal.roles)},
        },
        key,
    )
    return Written(export_id=export_id, manifest=manifest, filename=f"{case.number}-export.zip")
