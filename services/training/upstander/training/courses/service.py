"""Course catalogue logic: plain functions on a session, scoped by the caller's org."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from upstander.kit.auth import Principal
from upstander.kit.errors import NotFound, PreconditionFailed
from upstander.kit.pagination import PageParams, paginate
from upstander.training.compliance.store import refresh_items
from upstander.training.courses.schemas import CourseCreate, CourseUpdate
from upstander.training.external_refs import service as refs
from upstander.training.models import Course, CourseKind

# What the compliance engine reads of a course: a change re-evaluates its requirements.
COMPLIANCE_FIELDS = frozenset({"duration_minutes", "interactive", "validity_months"})


def _org(principal: Principal) -> uuid.UUID:
    # staff_or_client guarantees an org; this keeps the type checker and a future caller honest.
    if principal.org_id is None:
        raise NotFound("No such course.")
    return principal.org_id


async def list_courses(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    kind: CourseKind | None = None,
    include_archived: bool = False,
    external_ref: str | None = None,
) -> tuple[list[Course], str | None]:
    statement = select(Course).where(Course.org_id == _org(principal))
    if external_ref is not None:
        statement = statement.where(refs.course_condition(_org(principal), external_ref))
    if kind is not None:
        statement = statement.where(Course.kind == kind)
    if not include_archived:
        statement = statement.where(Course.active.is_(True))
    return await paginate(session, statement, Course, params)


async def get_course(session: AsyncSession, principal: Principal, course_id: uuid.UUID) -> Course:
    course = await session.scalar(
        select(Course).where(Course.id == course_id, Course.org_id == _org(principal))
    )
    if course is None:
        raise NotFound("No such course.")
    return course


async def create_course(session: AsyncSession, principal: Principal, data: CourseCreate) -> Course:
    values = data.model_dump(mode="json", exclude={"external_refs"})
    course = Course(org_id=_org(principal), **values)
    refs.attach(course, data.external_refs)
    session.add(course)
    await refs.flush(session, course)
    return course


async def upsert_course(
    session: AsyncSession, principal: Principal, data: CourseCreate
) -> tuple[Course, bool]:
    """Create the course, or, when one of `data.external_refs` already names a course of the
    organisation, update that one with `data` (and give it the other references). Returns
    the course and whether it is new."""
    existing = await refs.course_by_refs(session, _org(principal), data.external_refs)
    if existing is None:
        return await create_course(session, principal, data), True
    update = CourseUpdate.model_validate(data.model_dump(mode="json", exclude={"external_refs"}))
    course = await update_course(session, principal, existing.id, update)
    if refs.attach(course, data.external_refs):
        await refs.flush(session, course)
    return course, False


def check_version(course: Course, if_match: str | None) -> None:
    """`If-Match` is optional; when sent it must name the current version (or be `*`)."""
    if if_match is None:
        return
    wanted = [tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")]
    if "*" in wanted or str(course.version) in wanted:
        return
    raise PreconditionFailed(
        "The course has changed since you read it; fetch it again.",
        current_version=course.version,
    )


async def _flush_update(session: AsyncSession, course: Course) -> None:
    try:
        await session.flush()
    except StaleDataError as exc:  # another writer won the race between our read and write
        raise PreconditionFailed(
            "The course has changed since you read it; fetch it again."
        ) from exc
    await session.refresh(course)


async def update_course(
    session: AsyncSession,
    principal: Principal,
    course_id: uuid.UUID,
    data: CourseUpdate,
    *,
    if_match: str | None = None,
) -> Course:
    course = await get_course(session, principal, course_id)
    check_version(course, if_match)
    changes: dict[str, Any] = data.model_dump(mode="json", exclude_unset=True)
    changed: set[str] = set()
    for name, value in changes.items():
        if getattr(course, name) != value:
            setattr(course, name, value)
            changed.add(name)
    if changed:
        await _flush_update(session, course)
    if changed & COMPLIANCE_FIELDS:
        await refresh_items(session, course.org_id, courses=[course.id])
    return course


async def archive_course(
    session: AsyncSession,
    principal: Principal,
    course_id: uuid.UUID,
    *,
    if_match: str | None = None,
) -> Course:
    course = await get_course(session, principal, course_id)
    check_version(course, if_match)
    if course.active:
        course.active = False
        await _flush_update(session, course)
    return course
