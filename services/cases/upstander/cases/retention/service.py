"""Retention of finished cases, and legal holds.

A finished case (closed, referred or dismissed) is kept `retention_days_after_close` days
after `closed_at` (per organisation; 1461 days = 4 years by default, California Gov Code
12946, the longest of the periods in DOMAIN.md: EEOC 1 year, HinSchG 3 years), and longer
while a legal hold is on. Then the retention pass deletes it:

1. destroys the case's data key (`Vault.destroy_key`): every field sealed under it, in this
   database and in every backup, reads back as null from then on;
2. deletes every row hanging off the case (report, attachments, messages, transitions,
   allegations, measures, actions, assignments, shares, links, restrictions, notices,
   check-ins);
3. keeps the `cases` row as a tombstone: status `deleted`, `deleted_at`, the number and the
   dates; categories, the reporter's id and the hold are cleared. Nobody sees a tombstone
   through the API; it keeps numbers from being reused and audit entries meaningful;
4. appends an audit entry without content: action `case.deleted`, the case id, its number.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.cases.audit.service import append
from upstander.cases.models import (
    Allegation,
    Case,
    CaseAssignment,
    CaseAttachment,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    CaseInterview,
    CaseInterviewVersion,
    CaseLink,
    CaseNote,
    CaseNoteVersion,
    CaseReport,
    CaseRestriction,
    CaseSettings,
    CaseShare,
    CaseStatus,
    CaseTransition,
    CorrectiveAction,
    DeadlineNotice,
    EvidenceChunk,
    EvidenceCustody,
    EvidenceItem,
    InterimMeasure,
    Message,
    ReporterIdentityRead,
    RetaliationCheckin,
)
from upstander.cases.problems import InvalidRequest
from upstander.kit.clock import Clock
from upstander.kit.crypto import Vault

log = logging.getLogger("upstander.cases.retention")

# California (Gov Code 12946): 4 years, the longest period that applies by default.
DEFAULT_RETENTION_DAYS = 1461
FINISHED = (CaseStatus.CLOSED, CaseStatus.REFERRED, CaseStatus.DISMISSED)
BATCH = 200
# Rows that hang off a case (by `case_id`), deleted with it.
CASE_ROWS = (
    # Children before the rows they hang off (versions, chunks and custody first).
    CaseNoteVersion,
    CaseNote,
    CaseInterviewVersion,
    CaseInterview,
    EvidenceChunk,
    EvidenceCustody,
    EvidenceItem,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    ReporterIdentityRead,
    CaseReport,
    CaseAttachment,
    Message,
    CaseTransition,
    Allegation,
    InterimMeasure,
    CorrectiveAction,
    CaseAssignment,
    CaseShare,
    CaseRestriction,
    DeadlineNotice,
    RetaliationCheckin,
)


async def retention_days(session: AsyncSession, org_id: uuid.UUID) -> int:
    settings = await session.get(CaseSettings, org_id)
    if settings is None or settings.retention_days_after_close is None:
        return DEFAULT_RETENTION_DAYS
    return settings.retention_days_after_close


async def set_legal_hold(
    session: AsyncSession, case: Case, *, on: bool, reason: str | None, vault: Vault, now: datetime
) -> Case:
    """Put a case on legal hold (a reason is required) or lift it."""
    if on and not reason:
        raise InvalidRequest("body.reason", "Say why the case is on hold.")
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    case.legal_hold = on
    case.legal_hold_reason = reason if on else None
    case.legal_hold_at = now if on else None
    case.updated_at = now
    await session.flush()
    return case


async def delete_case(session: AsyncSession, case: Case, *, vault: Vault, now: datetime) -> None:
    """Shred and delete one case, leaving a tombstone and an audit entry (see the module)."""
    await vault.destroy_key(session, case.id)
    for model in CASE_ROWS:
        await session.execute(delete(model).where(model.case_id == case.id))  # type: ignore[attr-defined]
    await session.execute(
        delete(CaseLink).where(or_(CaseLink.case_id == case.id, CaseLink.linked_case_id == case.id))
    )
    number = case.number
    case.status = CaseStatus.DELETED
    case.deleted_at = case.updated_at = now
    case.categories = []
    case.reporter_person_id = None
    case.legal_hold, case.legal_hold_reason, case.legal_hold_at = False, None, None
    await session.flush()
    await append(
        session,
        org_id=case.org_id,
        actor_kind="system",
        actor_id="retention",
        action="case.deleted",
        at=now,
        case_id=case.id,
        detail={"number": number},
    )


class RetentionSweeper:
    """Deletes finished cases past their organisation's retention that are not on hold.
    `run_once()` is what the deadline scheduler's loop calls and what tests call."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], vault: Vault, clock: Clock
    ) -> None:
        self.sessionmaker = sessionmaker
        self.vault = vault
        self.clock = clock
        self._lock = asyncio.Lock()

    async def run_once(self) -> int:
        """One pass; returns how many cases it deleted."""
        deleted = 0
        async with self._lock, self.sessionmaker() as session, session.begin():
            now = self.clock.now()
            org_ids = set(
                await session.scalars(
                    select(Case.org_id).where(Case.status.in_(FINISHED)).distinct()
                )
            )
            for org_id in sorted(org_ids):
                cutoff = now - timedelta(days=await retention_days(session, org_id))
                due = await session.scalars(
                    select(Case)
                    .where(
                        Case.org_id == org_id,
                        Case.status.in_(FINISHED),
                        Case.closed_at.is_not(None),
                        Case.closed_at <= cutoff,
                        Case.legal_hold.is_(False),
                    )
                    .order_by(Case.closed_at, Case.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
                for case in list(due):
                    await delete_case(session, case, vault=self.vault, now=now)
                    deleted += 1
        if deleted:
            log.info("cases deleted past retention", extra={"count": deleted})
        return deleted
