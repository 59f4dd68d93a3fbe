"""Interim (protective) measures and corrective actions of a case. Notes and descriptions
are sealed under the case's key. Following EEOC guidance, a measure must not burden the
reporter: one that changes the reporter's own schedule, reporting line, leave or place of
work needs their consent (no involuntary transfer)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from upstander.cases.assignments.service import check_impartial
from upstander.cases.cases.service import actor_of
from upstander.cases.models import (
    ActionStatus,
    Case,
    CorrectiveAction,
    InterimMeasure,
    MeasureAffects,
    MeasureKind,
    Person,
)
from upstander.cases.problems import InvalidRequest, StaleVersion
from upstander.kit.auth import Principal
from upstander.kit.crypto import Vault
from upstander.kit.errors import Conflict, NotFound

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
        await check_owner(session, case, owner_person_id)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    action = CorrectiveAction(
        org_id=case.org_id,
        case_id=case.id,
        description=description,
        owner_person_id=owner_person_id,
        due_at=due_at,
        status=ActionStatus.OPEN,
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


# Where an action may go from each state; done and cancelled are final.
ACTION_MOVES: dict[ActionStatus, tuple[ActionStatus, ...]] = {
    ActionStatus.OPEN: (ActionStatus.IN_PROGRESS, ActionStatus.DONE, ActionStatus.CANCELLED),
    ActionStatus.IN_PROGRESS: (ActionStatus.OPEN, ActionStatus.DONE, ActionStatus.CANCELLED),
    ActionStatus.DONE: (),
    ActionStatus.CANCELLED: (),
}


async def check_owner(session: AsyncSession, case: Case, person_id: uuid.UUID) -> None:
    """An action's owner: an active person of the case's org, without a conflict of interest."""
    person = await session.get(Person, person_id)
    if person is None or person.org_id != case.org_id or not person.active:
        raise NotFound("No such active person in your organisation to own the action.")
    await check_impartial(session, case, person_id)


async def get_action(session: AsyncSession, case: Case, action_id: uuid.UUID) -> CorrectiveAction:
    action = await session.scalar(
        select(CorrectiveAction)
        .where(
            CorrectiveAction.id == action_id,
            CorrectiveAction.case_id == case.id,
            CorrectiveAction.org_id == case.org_id,
        )
        .execution_options(populate_existing=True)
    )
    if action is None:
        raise NotFound("No such corrective action on this case.")
    return action


def _check_action_if_match(action: CorrectiveAction, if_match: str | None) -> None:
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if "*" in tags:
        return
    if str(action.version) not in {tag.removeprefix("W/").strip('"') for tag in tags}:
        raise StaleVersion(
            "The action changed since you read it; fetch it again.", etag=f'"{action.version}"'
        )


def _move(action: CorrectiveAction, to: ActionStatus, now: datetime) -> None:
    if to == action.status:
        return
    if to not in ACTION_MOVES[action.status]:
        raise Conflict(
            f"A {action.status.value} action cannot become {to.value}.",
            current=action.status.value,
            allowed=[state.value for state in ACTION_MOVES[action.status]],
        )
    action.status = to
    if to == ActionStatus.DONE:
        action.completed_at = now


async def update_action(
    session: AsyncSession,
    case: Case,
    action_id: uuid.UUID,
    *,
    changes: dict[str, Any],
    if_match: str | None,
    now: datetime,
) -> CorrectiveAction:
    """Change an action's description, owner, due date or status (`If-Match`: its version).
    A new due date is a new deadline: the scheduler announces it afresh."""
    action = await get_action(session, case, action_id)
    _check_action_if_match(action, if_match)
    if action.status in (ActionStatus.DONE, ActionStatus.CANCELLED) and set(changes) - {"status"}:
        raise Conflict(f"A {action.status.value} action cannot be changed.")
    if changes.get("description") is not None:
        action.description = changes["description"]
    if "owner_person_id" in changes:
        owner = changes["owner_person_id"]
        if owner is not None:
            await check_owner(session, case, owner)
        action.owner_person_id = owner
    if changes.get("due_at") is not None:
        action.due_at = changes["due_at"]
    if changes.get("status") is not None:
        _move(action, ActionStatus(changes["status"]), now)
    action.updated_at = now
    try:
        await session.flush()
    except StaleDataError:
        raise StaleVersion("The action changed meanwhile; fetch it again.") from None
    return action


async def complete_action(
    session: AsyncSession, case: Case, action_id: uuid.UUID, *, now: datetime
) -> CorrectiveAction:
    action = await get_action(session, case, action_id)
    if action.status != ActionStatus.DONE:
        _move(action, ActionStatus.DONE, now)
        action.updated_at = now
        await session.flush()
    return action
