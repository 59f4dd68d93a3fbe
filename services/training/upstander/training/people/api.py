"""Routes of the people projection (read-only: people change at the gateway)."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import NotFound, problem_responses
from upstander.kit.pagination import Page, PageParams, page_params, paginate
from upstander.kit.scopes import Scope, require_scope
from upstander.training.access import READERS, org_of
from upstander.training.models import Person
from upstander.training.people.schemas import PersonOut

router = make_router(prefix="/training/v1/people", tags=["people"])


@router.get(
    "",
    operation_id="list_people",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="List the people training knows about (trainer, admin, auditor)",
    response_model=Page[PersonOut],
    responses=problem_responses(400),
)
async def list_people(
    include_inactive: bool = Query(False, description="Include leavers."),
    params: PageParams = Depends(page_params),
    principal: Principal = require_roles(*READERS),
    session: AsyncSession = Depends(get_session),
) -> Page[PersonOut]:
    statement = select(Person).where(Person.org_id == org_of(principal))
    if not include_inactive:
        statement = statement.where(Person.active.is_(True))
    people, next_cursor = await paginate(session, statement, Person, params)
    return Page[PersonOut](
        items=[PersonOut.model_validate(p) for p in people], next_cursor=next_cursor
    )


@router.get(
    "/{person_id}",
    operation_id="get_person",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Get a person (trainer, admin, auditor)",
    response_model=PersonOut,
)
async def get_person(
    person_id: uuid.UUID,
    principal: Principal = require_roles(*READERS),
    session: AsyncSession = Depends(get_session),
) -> PersonOut:
    person = await session.get(Person, person_id)
    if person is None or person.org_id != org_of(principal):
        raise NotFound("No such person.")
    return PersonOut.model_validate(person)
