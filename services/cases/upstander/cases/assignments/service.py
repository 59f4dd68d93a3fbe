"""Designate the people who handle a case, refusing anyone with a conflict of interest:

- `involved`: named in the report or an allegation;
- `excluded`: the reporter asked that they never see it;
- `recused`: they stepped away from it;
- `above_involved`: above an involved person in the reporting chain (any depth);
- `reports_to_involved`: an involved person is above them in the reporting chain.

Refusals name the rule, never the person it relates to. Chains are walked with
`managers_above`, which stops on cycles.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases.service import (
    actor_of,
    involved_people,
    restrict,
    restricted_person_ids,
)
from upstander.cases.directory.service import managers_above
from upstander.cases.models import (
    AssignmentRole,
    Case,
    CaseAssignment,
    CaseRestriction,
    CaseShare,
    Person,
    RestrictionReason,
)
from upstander.cases.problems import ConflictOfInterest
from upstander.kit.auth import Principal
from upstander.kit.contracts import CaseAssigned
from upstander.kit.errors import Conflict, Forbidden, NotFound
from upstander.kit.events import EventBus

_RULE_TEXT = {
    "involved": "They are involved in the case.",
    "excluded": "The reporter asked that they not handle or see this case.",
    "recused": "They recused themselves from this case.",
    "above_involved": "They are above a person involved in the reporting chain.",
    "reports_to_involved": "A person involved is above them in the reporting chain.",
}

CASE_ASSIGNED = CaseAssigned.EVENT_TYPE


async def conflict_rule(session: AsyncSession, case: Case, person_id: uuid.UUID) -> str | None:
    """The first conflict-of-interest rule `person_id` breaks on `case`, or None."""
    reasons = set(
        await session.scalars(
            select(CaseRestriction.reason).where(
                CaseRestriction.case_id == case.id, CaseRestriction.person_id == person_id
            )
        )
    )
    for reason, rule in (
        (RestrictionReason.INVOLVED, "involved"),
        (RestrictionReason.EXCLUDED, "excluded"),
        (RestrictionReason.RECUSED, "recused"),
        (RestrictionReason.CHAIN, "above_involved"),
    ):
        if reason in reasons:
            return rule
    involved = await involved_people(session, case.id)
    if not involved:
        return None
    if person_id in await managers_above(session, case.org_id, involved):
        return "above_involved"
    if involved & await managers_above(session, case.org_id, {person_id}):
        return "reports_to_involved"
    return None


async def check_impartial(session: AsyncSession, case: Case, person_id: uuid.UUID) -> None:
    rule = await conflict_rule(session, case, person_id)
    if rule is not None:
        raise ConflictOfInterest(
            f"This person cannot handle this case. {_RULE_TEXT[rule]}", rule=rule
        )


async def _directory_person(session: AsyncSession, case: Case, person_id: uuid.UUID) -> Person:
    person = await session.get(Person, person_id)
    if person is None or person.org_id != case.org_id or not person.active:
        raise NotFound("No such active person in your organisation.")
    return person


async def assign(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    person_id: uuid.UUID,
    role: AssignmentRole,
    now: datetime,
    events: EventBus,
) -> CaseAssignment:
    """Assign `person_id` to `case` in `role` if no conflict rule forbids it, and announce it
    (`upstander.case.assigned`, ids only) so the assignee is told."""
    person = await _directory_person(session, case, person_id)
    await check_impartial(session, case, person_id)
    if role.value not in (person.roles or []):
        raise Conflict(f"This person does not hold the {role.value} role.", rule="role_not_held")
    existing = await session.scalar(
        select(CaseAssignment.id).where(
            CaseAssignment.case_id == case.id,
            CaseAssignment.person_id == person_id,
            CaseAssignment.role == role,
        )
    )
    if existing is not None:
        raise Conflict("This person already has that role on the case.")
    assignment = CaseAssignment(
        org_id=case.org_id,
        case_id=case.id,
        person_id=person_id,
        role=role,
        assigned_by=actor_of(principal)[1],
        created_at=now,
    )
    session.add(assignment)
    await session.flush()
    await events.publish(
        session,
        CASE_ASSIGNED,
        f"case/{case.id}",
        CaseAssigned(
            case_id=case.id,
            number=case.number,
            person_id=person_id,
            role=role.value,
            routed_to=case.routed_to.value,
            restricted_person_ids=await restricted_person_ids(session, case.id),
        ).model_dump(mode="json"),
        org_id=case.org_id,
    )
    return assignment


async def list_assignments(session: AsyncSession, case: Case) -> list[CaseAssignment]:
    rows = await session.scalars(
        select(CaseAssignment)
        .where(CaseAssignment.org_id == case.org_id, CaseAssignment.case_id == case.id)
        .order_by(CaseAssignment.created_at, CaseAssignment.id)
    )
    return list(rows.all())


async def unassign(session: AsyncSession, case: Case, assignment_id: uuid.UUID) -> CaseAssignment:
    assignment = await session.scalar(
        select(CaseAssignment).where(
            CaseAssignment.id == assignment_id,
            CaseAssignment.case_id == case.id,
            CaseAssignment.org_id == case.org_id,
        )
    )
    if assignment is None:
        raise NotFound("No such assignment on this case.")
    await session.delete(assignment)
    await session.flush()
    return assignment


async def recuse(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    now: datetime,
    events: EventBus | None = None,
) -> uuid.UUID:
    """The caller steps away: hidden from them from now on, their roles on it dropped. With
    `events`, notify is told (`case.restricted`) and withdraws their notices about the case."""
    person_id = principal.person_id
    if person_id is None:
        raise Forbidden("Only a person can recuse themself.")
    await restrict(session, case, {person_id}, RestrictionReason.RECUSED, events=events, now=now)
    await session.execute(
        delete(CaseAssignment).where(
            CaseAssignment.case_id == case.id, CaseAssignment.person_id == person_id
        )
    )
    await session.execute(
        delete(CaseShare).where(CaseShare.case_id == case.id, CaseShare.person_id == person_id)
    )
    return person_id


async def share(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    person_id: uuid.UUID,
    now: datetime,
) -> CaseShare:
    """A reviewer lets someone see the case; conflict rules apply as for an assignment."""
    await _directory_person(session, case, person_id)
    await check_impartial(session, case, person_id)
    existing = await session.scalar(
        select(CaseShare).where(CaseShare.case_id == case.id, CaseShare.person_id == person_id)
    )
    if existing is not None:
        return existing
    shared = CaseShare(
        org_id=case.org_id,
        case_id=case.id,
        person_id=person_id,
        shared_by=actor_of(principal)[1],
        created_at=now,
    )
    session.add(shared)
    await session.flush()
    return shared
