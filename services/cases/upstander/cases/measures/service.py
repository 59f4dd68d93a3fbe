"""Interim (protective) measures and corrective actions of a case. Notes and descriptions
are sealed under the case's key. Following EEOC guidance, a measure must not burden the
reporter: one that changes the reporter's own schedule, reporting line, leave or place of
work needs their consent (no involuntary transfer)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.assignments.service import check_impartial
from upstander.cases.cases.service import actor_of
from upstander.cases.models import (
    Case,
    CorrectiveAction,
    InterimMeasure,
    MeasureAffects,
    MeasureKind,
    Person,
)
from upstander.cases.problems import InvalidRequest
from upstander.kit.auth import Principal
from upstander.kit.crypto import Vault
from upstander.kit.errors import NotFound

# Measures that move the person they affect; on the reporter, only with their consent.
BURDENSOME = {
    MeasureKind.SCHEDULE_CHANGE,
    MeasureKind.REPORTING_LINE_CHANGE,
    MeasureKind.LEAVE,
    MeasureKind.REMOTE_WORK,
}


async def add_measure(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    kind: MeasureKind,
    affects: MeasureAffects,
    reporter_consented: bool,
    starts_on: date,
    ends_on: date | None,
    approved_by: uuid.UUID,
    notes: str | None,
    vault: Vault,
    now: datetime,
) -> InterimMeasure:
    if ends_on is not None and ends_on < starts_on:
        raise InvalidRequest("body.ends_on", "A measure cannot end before it starts.")
    if affects == MeasureAffects.REPORTER and kind in BURDENSOME and not reporter_consented:
        raise InvalidRequest(
            "body.reporter_consented",
            "A measure that changes the reporter's own work needs their consent.",
        )
    approver = await session.get(Person, approved_by)
    if approver is None or approver.org_id != case.org_id:
        raise NotFound("No such person in your organisation to approve the measure.")
    await check_impartial(session, case, approved_by)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    measure = InterimMeasure(
        org_id=case.org_id,
        case_id=case.id,
        kind=kind,
        affects=affects,
        reporter_consented=reporter_consented,
        starts_on=starts_on,
        ends_on=ends_on,
        approved_by=approved_by,
        notes=notes,
        created_by=actor_of(principal)[1],
        created_at=now,
        updated_at=now,
    )
    session.add(measure)
    await session.flush()
    return measure


async def list_measures(session: AsyncSession, case: Case) -> list[InterimMeasure]:
    rows = await session.scalars(
        select(InterimMeasure)
        .where(InterimMeasure.org_id == case.org_id, InterimMeasure.case_id == case.id)
        .order_by(InterimMeasure.created_at, InterimMeasure.id)
    )
    return list(rows.all())


async def add_action(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    description: str,
    owner_person_id: uuid.UUID | None,
    due_at: datetime,
    vault: Vault,
    now: datetime,
) -> CorrectiveAction:
    if owner_person_id is not None:
        await check_impartial(session, case, owner_person_id)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    action = CorrectiveAction(
        org_id=case.org_id,
        case_id=case.id,
        description=description,
        owner_person_id=owner_person_id,
        due_at=due_at,
        created_by=actor_of(principal)[1],
        created_at=now,
        updated_at=now,
    )
    session.add(action)
    await session.flush()
    return action


async def list_actions(session: AsyncSession, case: Case) -> list[CorrectiveAction]:
    rows = await session.scalars(
        select(CorrectiveAction)
        .where(CorrectiveAction.org_id == case.org_id, CorrectiveAction.case_id == case.id)
        .order_by(CorrectiveAction.created_at, CorrectiveAction.id)
    )
    return list(rows.all())


async def complete_action(
    session: AsyncSession, case: Case, action_id: uuid.UUID, *, now: datetime
) -> CorrectiveAction:
    action = await session.scalar(
        select(CorrectiveAction).where(
            CorrectiveAction.id == action_id,
            CorrectiveAction.case_id == case.id,
            CorrectiveAction.org_id == case.org_id,
        )
    )
    if action is None:
        raise NotFound("No such corrective action on this case.")
    if action.completed_at is None:
        action.completed_at = action.updated_at = now
        await session.flush()
    return action
