"""Per-organisation deadline settings (only ever shorter than the law's) and the scheduler
that announces deadlines coming up (`deadline_approaching`) or passed (`deadline_missed`).

Each announcement is recorded in `deadline_notices` under a unique key (subject, deadline,
kind, due date), inserted with ON CONFLICT DO NOTHING, so it fires once even with several
replicas running the scheduler; a deadline that moves (feedback re-counted from the
acknowledgment) is a new deadline and is announced again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.cases.cases import deadlines
from upstander.cases.cases.service import actor_of, restricted_person_ids
from upstander.cases.checkins.service import DEFAULT_OFFSETS_DAYS, post_due_checkins
from upstander.cases.models import (
    ActionStatus,
    Case,
    CaseSettings,
    CaseStatus,
    CorrectiveAction,
    DeadlineKind,
    DeadlineNotice,
    JurisdictionPreset,
    NoticeKind,
)
from upstander.cases.retention.service import DEFAULT_RETENTION_DAYS
from upstander.kit.auth import Principal
from upstander.kit.clock import Clock
from upstander.kit.contracts import (
    CaseActionOverdue,
    CaseDeadlineApproaching,
    CaseDeadlineMissed,
)
from upstander.kit.crypto import Vault
from upstander.kit.db import upsert_insert
from upstander.kit.events import EventBus
from upstander.kit.loops import PeriodicTask, failure_summary

log = logging.getLogger("upstander.cases.deadlines")

APPROACHING = CaseDeadlineApproaching.EVENT_TYPE
MISSED = CaseDeadlineMissed.EVENT_TYPE
ACTION_OVERDUE = CaseActionOverdue.EVENT_TYPE
BATCH = 500

PRESETS: dict[JurisdictionPreset, tuple[int, int]] = {
    JurisdictionPreset.EU_DIRECTIVE: (deadlines.ACKNOWLEDGE_DAYS, deadlines.FEEDBACK_WITHIN_MONTHS)
}


# ----------------------------------------------------------------------------- settings


async def get_settings(session: AsyncSession, org_id: uuid.UUID) -> CaseSettings:
    """The org's settings; the preset's defaults (not stored) when it never set any."""
    settings = await session.get(CaseSettings, org_id)
    if settings is not None:
        return settings
    days, months = PRESETS[JurisdictionPreset.EU_DIRECTIVE]
    return CaseSettings(
        org_id=org_id,
        acknowledge_days=days,
        feedback_months=months,
        jurisdiction_preset=JurisdictionPreset.EU_DIRECTIVE,
        checkin_offsets_days=list(DEFAULT_OFFSETS_DAYS),
        retention_days_after_close=DEFAULT_RETENTION_DAYS,
        updated_at=None,
        updated_by=None,
    )


async def put_settings(
    session: AsyncSession,
    principal: Principal,
    *,
    preset: JurisdictionPreset,
    acknowledge_days: int | None,
    feedback_months: int | None,
    checkin_offsets_days: list[int] | None = None,
    retention_days_after_close: int | None = None,
    now: datetime,
) -> CaseSettings:
    """Set the org's deadlines: the preset's, or shorter ones (the schema caps them). They
    apply to cases opened from now on."""
    assert principal.org_id is not None
    legal_days, legal_months = PRESETS[preset]
    settings = await session.get(CaseSettings, principal.org_id)
    if settings is None:
        settings = CaseSettings(
            org_id=principal.org_id,
            checkin_offsets_days=list(DEFAULT_OFFSETS_DAYS),
            retention_days_after_close=DEFAULT_RETENTION_DAYS,
        )
        session.add(settings)
    if checkin_offsets_days is not None:
        settings.checkin_offsets_days = sorted(set(checkin_offsets_days))
    if retention_days_after_close is not None:
        settings.retention_days_after_close = retention_days_after_close
    settings.jurisdiction_preset = preset
    settings.acknowledge_days = min(acknowledge_days or legal_days, legal_days)
    settings.feedback_months = min(feedback_months or legal_months, legal_months)
    settings.updated_at = now
    settings.updated_by = actor_of(principal)[1]
    await session.flush()
    return settings


# ----------------------------------------------------------------------------- scheduler


async def _record_notice(
    session: AsyncSession,
    *,
    case: Case,
    subject_id: uuid.UUID,
    deadline: DeadlineKind,
    kind: NoticeKind,
    due_at: datetime,
    now: datetime,
) -> bool:
    """Insert the notice unless it exists; True when this call inserted it."""
    statement = (
        upsert_insert(session, DeadlineNotice)
        .values(
            id=uuid.uuid4(),
            org_id=case.org_id,
            case_id=case.id,
            subject_id=subject_id,
            deadline=deadline,
            kind=kind,
            due_at=due_at,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["subject_id", "deadline", "kind", "due_at"])
        .returning(DeadlineNotice.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


def _not_yet_missed(subject: Any, deadline: DeadlineKind, due: Any) -> Any:
    """Skip subjects whose miss was already announced: they would be looked at forever."""
    return ~exists().where(
        DeadlineNotice.subject_id == subject,
        DeadlineNotice.deadline == deadline,
        DeadlineNotice.kind == NoticeKind.MISSED,
        DeadlineNotice.due_at == due,
    )


class DeadlineScheduler:
    """Finds deadlines within the warning window or past, and announces each once.
    `run_once()` is what the background loop calls and what tests call."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        events: EventBus,
        clock: Clock,
        *,
        warning: timedelta,
        interval_seconds: float,
        vault: Vault | None = None,
        after_pass: list[Callable[[], Awaitable[int]]] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.events = events
        self.clock = clock
        self.warning = warning
        self.interval_seconds = interval_seconds
        self.vault = vault
        # Other passes the background loop runs after each deadline pass (retention).
        self.after_pass = list(after_pass or [])
        self._lock = asyncio.Lock()
        self._loop = PeriodicTask("cases-deadlines", self._pass, interval=interval_seconds)

    async def run_once(self) -> int:
        """One pass; returns how many notices it emitted plus check-ins it posted."""
        async with self._lock, self.sessionmaker() as session, session.begin():
            now = self.clock.now()
            horizon = now + self.warning
            emitted = 0
            finished = (
                CaseStatus.CLOSED,
                CaseStatus.DISMISSED,
                CaseStatus.REFERRED,
                CaseStatus.DELETED,
            )
            acknowledge = await session.scalars(
                select(Case)
                .where(
                    Case.acknowledged_at.is_(None),
                    Case.status == CaseStatus.NEW,
                    Case.acknowledge_by <= horizon,
                    _not_yet_missed(Case.id, DeadlineKind.ACKNOWLEDGE, Case.acknowledge_by),
                )
                .limit(BATCH)
            )
            for case in list(acknowledge):
                emitted += await self._notice(
                    session, case, case.id, DeadlineKind.ACKNOWLEDGE, case.acknowledge_by, now
                )
            feedback = await session.scalars(
                select(Case)
                .where(
                    Case.feedback_sent_at.is_(None),
                    Case.status.not_in(finished),
                    Case.feedback_by <= horizon,
                    _not_yet_missed(Case.id, DeadlineKind.FEEDBACK, Case.feedback_by),
                )
                .limit(BATCH)
            )
            for case in list(feedback):
                emitted += await self._notice(
                    session, case, case.id, DeadlineKind.FEEDBACK, case.feedback_by, now
                )
            actions = await session.execute(
                select(CorrectiveAction, Case)
                .join(
                    Case,
                    and_(
                        Case.id == CorrectiveAction.case_id, Case.org_id == CorrectiveAction.org_id
                    ),
                )
                .where(
                    CorrectiveAction.status.in_([ActionStatus.OPEN, ActionStatus.IN_PROGRESS]),
                    CorrectiveAction.due_at <= horizon,
                    _not_yet_missed(
                        CorrectiveAction.id, DeadlineKind.ACTION, CorrectiveAction.due_at
                    ),
                )
                .limit(BATCH)
            )
            for action, case in list(actions):
                emitted += await self._notice(
                    session, case, action.id, DeadlineKind.ACTION, action.due_at, now
                )
            if self.vault is not None:
                emitted += await post_due_checkins(
                    session, vault=self.vault, events=self.events, now=now
                )
        if emitted:
            log.info("deadline notices emitted", extra={"count": emitted})
        return emitted

    async def _notice(
        self,
        session: AsyncSession,
        case: Case,
        subject_id: uuid.UUID,
        deadline: DeadlineKind,
        due_at: datetime,
        now: datetime,
    ) -> int:
        kind = NoticeKind.MISSED if now >= due_at else NoticeKind.APPROACHING
        inserted = await _record_notice(
            session,
            case=case,
            subject_id=subject_id,
            deadline=deadline,
            kind=kind,
            due_at=due_at,
            now=now,
        )
        if not inserted:
            return 0
        contract = CaseDeadlineMissed if kind == NoticeKind.MISSED else CaseDeadlineApproaching
        notice = contract(
            case_id=case.id,
            number=case.number,
            deadline=deadline.value,
            due_at=due_at,
            routed_to=case.routed_to.value,
            restricted_person_ids=await restricted_person_ids(session, case.id),
            action_id=subject_id if deadline == DeadlineKind.ACTION else None,
        )
        await self.events.publish(
            session,
            contract.EVENT_TYPE,
            f"case/{case.id}",
            notice.model_dump(mode="json", exclude_none=True),  # `action_id` for actions only
            org_id=case.org_id,
        )
        if deadline == DeadlineKind.ACTION and kind == NoticeKind.MISSED:
            # Once, with the miss (same notice row): the action's owner and handlers act on it.
            await self.events.publish(
                session,
                ACTION_OVERDUE,
                f"case/{case.id}",
                CaseActionOverdue(
                    case_id=case.id,
                    number=case.number,
                    action_id=subject_id,
                    due_at=due_at,
                    restricted_person_ids=notice.restricted_person_ids,
                ).model_dump(mode="json"),
                org_id=case.org_id,
            )
        return 1

    # -- background -------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _pass(self) -> bool:
        """The kit loop's step: the deadline pass, then the others (retention), each on its
        own so one failing does not skip the rest."""
        for step in (self.run_once, *self.after_pass):
            try:
                await step()
            except Exception as error:
                log.warning("scheduler pass failed", extra=failure_summary(error))
        return False
