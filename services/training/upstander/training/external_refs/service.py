"""External references on courses and completions: find by reference, attach, filter."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import Conflict
from upstander.kit.external_refs import one_per_system, parse_external_ref
from upstander.training.external_refs.models import CompletionExternalRef, CourseExternalRef
from upstander.training.external_refs.schemas import ExternalRefIn
from upstander.training.models import Completion, Course

Ref = TypeVar("Ref", CourseExternalRef, CompletionExternalRef)


def course_condition(org_id: uuid.UUID, value: str) -> ColumnElement[bool]:
    system, external_id = parse_external_ref(value)
    return exists().where(
        CourseExternalRef.course_id == Course.id,
        CourseExternalRef.org_id == org_id,
        CourseExternalRef.system == system,
        CourseExternalRef.external_id == external_id,
    )


def completion_condition(org_id: uuid.UUID, value: str) -> ColumnElement[bool]:
    system, external_id = parse_external_ref(value)
    return exists().where(
        CompletionExternalRef.completion_id == Completion.id,
        CompletionExternalRef.org_id == org_id,
        CompletionExternalRef.system == system,
        CompletionExternalRef.external_id == external_id,
    )


async def _owners(
    session: AsyncSession,
    model: type[Ref],
    owner: str,
    org_id: uuid.UUID,
    refs: Sequence[ExternalRefIn],
) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for ref in refs:
        owner_id = await session.scalar(
            select(getattr(model, owner)).where(
                model.org_id == org_id, model.system == ref.system, model.external_id == ref.id
            )
        )
        if owner_id is not None:
            found.add(owner_id)
    return found


async def course_by_refs(
    session: AsyncSession, org_id: uuid.UUID, refs: Sequence[ExternalRefIn]
) -> Course | None:
    """The course these references name, if any; two different courses are a 409."""
    one_per_system(ref.system for ref in refs)
    owners = await _owners(session, CourseExternalRef, "course_id", org_id, refs)
    if len(owners) > 1:
        raise Conflict("These references name different courses.", rule="external_ref_taken")
    if not owners:
        return None
    return await session.scalar(select(Course).where(Course.id == owners.pop()))


async def completion_by_refs(
    session: AsyncSession, org_id: uuid.UUID, refs: Sequence[ExternalRefIn]
) -> Completion | None:
    one_per_system(ref.system for ref in refs)
    owners = await _owners(session, CompletionExternalRef, "completion_id", org_id, refs)
    if len(owners) > 1:
        raise Conflict("These references name different completions.", rule="external_ref_taken")
    if not owners:
        return None
    return await session.scalar(select(Completion).where(Completion.id == owners.pop()))


def attach(target: Course | Completion, refs: Sequence[ExternalRefIn]) -> bool:
    """Give `target` the references it lacks (a new id in a system replaces the old one).
    The caller checked that none names another object. Returns whether anything changed."""
    current = {ref.system: ref for ref in target.external_refs}  # type: ignore[union-attr]
    model = CourseExternalRef if isinstance(target, Course) else CompletionExternalRef
    changed = False
    for ref in refs:
        row = current.get(ref.system)
        if row is not None and row.external_id == ref.id:
            continue
        if row is not None:
            row.external_id = ref.id
        else:
            target.external_refs.append(  # type: ignore[union-attr]
                model(org_id=target.org_id, system=ref.system, external_id=ref.id)
            )
        changed = True
    return changed


async def flush(session: AsyncSession, target: Course | Completion | None = None) -> None:
    """Flush (and load `target`'s references again, for its response); a reference taken
    meanwhile by a concurrent request is a 409."""
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(
            "Another record has this external reference.", rule="external_ref_taken"
        ) from error
    if target is not None:
        await session.refresh(target, attribute_names=["external_refs"])
