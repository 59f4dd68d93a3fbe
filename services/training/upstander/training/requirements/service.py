"""Requirement logic: plain functions on a session, scoped by the caller's org."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from upstander.kit.auth import Principal
from upstander.kit.errors import Conflict, NotFound, PreconditionFailed
from upstander.kit.pagination import PageParams, paginate
from upstander.training.access import InvalidReference, org_of
from upstander.training.compliance.store import refresh_items
from upstander.training.models import Course, Exemption, Person, Requirement
from upstander.training.requirements.presets import PRESETS, Preset
from upstander.training.requirements.schemas import (
    ExemptionCreate,
    RequirementCreate,
    RequirementUpdate,
)


async def _course(session: AsyncSession, org_id: uuid.UUID, course_id: uuid.UUID) -> Course:
    course = await session.scalar(
        select(Course).where(Course.id == course_id, Course.org_id == org_id)
    )
    if course is None:
        raise InvalidReference("body.course_id", "No such course.")
    return course


async def list_requirements(
    session: AsyncSession, principal: Principal, params: PageParams, *, include_retired: bool
) -> tuple[list[Requirement], str | None]:
    statement = select(Requirement).where(Requirement.org_id == org_of(principal))
    if not include_retired:
        statement = statement.where(Requirement.active.is_(True))
    return await paginate(session, statement, Requirement, params)


async def get_requirement(
    session: AsyncSession, principal: Principal, requirement_id: uuid.UUID
) -> Requirement:
    requirement = await session.scalar(
        select(Requirement).where(
            Requirement.id == requirement_id, Requirement.org_id == org_of(principal)
        )
    )
    if requirement is None:
        raise NotFound("No such requirement.")
    return requirement


async def create_requirement(
    session: AsyncSession, principal: Principal, data: RequirementCreate, *, now: datetime
) -> Requirement:
    org_id = org_of(principal)
    await _course(session, org_id, data.course_id)
    values = data.model_dump(exclude={"effective_from"})
    requirement = Requirement(
        org_id=org_id, effective_from=data.effective_from or now, active=True, **values
    )
    session.add(requirement)
    await session.flush()
    await refresh_items(session, org_id, requirements=[requirement.id])
    return requirement


async def update_requirement(
    session: AsyncSession,
    principal: Principal,
    requirement_id: uuid.UUID,
    data: RequirementUpdate,
    *,
    if_match: str | None,
) -> Requirement:
    requirement = await get_requirement(session, principal, requirement_id)
    if if_match is not None:
        wanted = [tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")]
        if "*" not in wanted and str(requirement.version) not in wanted:
            raise PreconditionFailed(
                "The requirement has changed since you read it.",
                current_version=requirement.version,
            )
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for name in ("name", "due_within_days", "interactive_required", "active"):
        if name in changes and changes[name] is None:
            changes.pop(name)
    changed = False
    for name, value in changes.items():
        if getattr(requirement, name) != value:
            setattr(requirement, name, value)
            changed = True
    if changed:
        try:
            await session.flush()
        except StaleDataError as exc:
            raise PreconditionFailed("The requirement has changed since you read it.") from exc
        await session.refresh(requirement)
        if set(changes) - {"name"}:  # titles are read live; anything else can change statuses
            await refresh_items(session, requirement.org_id, requirements=[requirement.id])
    return requirement


def get_preset(key: str) -> Preset:
    preset = PRESETS.get(key)
    if preset is None:
        raise NotFound("No such preset.")
    return preset


async def adopt_preset(
    session: AsyncSession, principal: Principal, key: str, *, now: datetime
) -> tuple[list[Requirement], list[uuid.UUID], int]:
    """Create the preset's courses (unless a course of that title exists) and requirements
    (unless adopted before). Adopting twice changes nothing."""
    preset = get_preset(key)
    org_id = org_of(principal)
    titles = {rule.course.title.lower() for rule in preset.rules}
    courses: dict[str, Course] = {}
    for course in await session.scalars(
        select(Course)
        .where(Course.org_id == org_id, func.lower(Course.title).in_(titles))
        .order_by(Course.active.desc(), Course.created_at)
    ):
        courses.setdefault(course.title.lower(), course)  # active and oldest first
    existing = {
        requirement.preset_key: requirement
        for requirement in (
            await session.scalars(
                select(Requirement).where(
                    Requirement.org_id == org_id,
                    Requirement.preset_key.in_([rule.key for rule in preset.rules]),
                )
            )
        ).all()
    }
    created_courses: list[uuid.UUID] = []
    requirements: list[Requirement] = []
    created = 0
    for rule in preset.rules:
        if rule.key in existing:
            requirements.append(existing[rule.key])
            continue
        found = courses.get(rule.course.title.lower())
        if found is None:
            found = Course(
                org_id=org_id,
                title=rule.course.title,
                kind=rule.course.kind,
                description=preset.description,
                duration_minutes=rule.course.minutes,
                languages=["en"],
                interactive=rule.course.interactive,
                activity_ids=[],
                validity_months=rule.recurrence_months,
                active=True,
            )
            session.add(found)
            await session.flush()
            courses[rule.course.title.lower()] = found
            created_courses.append(found.id)
        requirement = Requirement(
            org_id=org_id,
            course_id=found.id,
            name=rule.name,
            audience=rule.audience,
            location=rule.location,
            due_within_days=rule.due_within_days,
            recurrence_months=rule.recurrence_months,
            min_minutes=rule.min_minutes,
            interactive_required=rule.interactive_required,
            effective_from=now,
            preset_key=rule.key,
            active=True,
        )
        session.add(requirement)
        requirements.append(requirement)
        created += 1
    await session.flush()
    new = [requirement.id for requirement in requirements if requirement.preset_key not in existing]
    if new:
        await refresh_items(session, org_id, requirements=new)
    return requirements, created_courses, created


async def create_exemption(
    session: AsyncSession, principal: Principal, requirement_id: uuid.UUID, data: ExemptionCreate
) -> Exemption:
    requirement = await get_requirement(session, principal, requirement_id)
    person = await session.get(Person, data.person_id)
    if person is None or person.org_id != requirement.org_id:
        raise NotFound("No such person.")
    exists = await session.scalar(
        select(Exemption.id).where(
            Exemption.requirement_id == requirement.id, Exemption.person_id == person.id
        )
    )
    if exists is not None:
        raise Conflict("That person is already exempt from this requirement.")
    exemption = Exemption(
        org_id=requirement.org_id,
        requirement_id=requirement.id,
        person_id=person.id,
        reason=data.reason,
        granted_by=principal.subject[:64],
    )
    session.add(exemption)
    await session.flush()
    await refresh_items(
        session, requirement.org_id, people=[person.id], requirements=[requirement.id]
    )
    return exemption


async def list_exemptions(
    session: AsyncSession, principal: Principal, requirement_id: uuid.UUID, params: PageParams
) -> tuple[list[Exemption], str | None]:
    requirement = await get_requirement(session, principal, requirement_id)
    statement = select(Exemption).where(
        Exemption.org_id == requirement.org_id, Exemption.requirement_id == requirement.id
    )
    return await paginate(session, statement, Exemption, params)
