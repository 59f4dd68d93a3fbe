"""External references on courses and completions: find by reference, attach, filter."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import Conflict
from upstander.kit.external_refs import (
    attach_refs,
    has_ref,
    one_per_system,
    parse_external_ref,
    ref_owners,
)
from upstander.training.external_refs.models import CompletionExternalRef, CourseExternalRef
from upstander.training.external_refs.schemas import ExternalRefIn
from upstander.training.models import Completion, Course


def course_condition(org_id: uuid.UUID, value: str) -> ColumnElement[bool]:
    return has_ref(
        CourseExternalRef,
        CourseExternalRef.course_id,
        Course.id,
        org_id,
        *parse_external_ref(value),
    )


def completion_condition(org_id: uuid.UUID, value: str) -> ColumnElement[bool]:
    return has_ref(
        CompletionExternalRef,
        CompletionExternalRef.completion_id,
        Completion.id,
        org_id,
        *parse_external_ref(value),
    )


async def course_by_refs(
    session: AsyncSession, org_id: uuid.UUID, refs: Sequence[ExternalRefIn]
) -> Course | None:
    """The course these references name, if any; two different courses are a 409."""
    one_per_system(ref.system for ref in refs)
    owners = await ref_owners(session, CourseExternalRef.course_id, org_id, refs)
    if len(owners) > 1:
        raise Conflict("These references name different courses.", rule="external_ref_taken")
    if not owners:
        return None
    return await session.scalar(select(Course).where(Course.id == owners.pop()))


async def completion_by_refs(
    session: AsyncSession, org_id: uuid.UUID, refs: Sequence[ExternalRefIn]
) -> Completion | None:
    one_per_system(ref.system for ref in refs)
    owners = await ref_owners(session, CompletionExternalRef.completion_id, org_id, refs)
    if len(owners) > 1:
        raise Conflict("These references name different completions.", rule="external_ref_taken")
    if not owners:
        return None
    return await session.scalar(select(Completion).where(Completion.id == owners.pop()))


def attach(target: Course | Completion, refs: Sequence[ExternalRefIn]) -> bool:
    """Give `target` the references it lacks (a new id in a system replaces the old one).
    The caller checked that none names another object. Returns whether anything changed."""
    model = CourseExternalRef if isinstance(target, Course) else CompletionExternalRef
    return attach_refs(
        target.external_refs,  # type: ignore[union-attr]
        refs,
        lambda system, external_id: model(
            org_id=target.org_id, system=system, external_id=external_id
        ),
    )


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
