"""People's external references: find a person by reference, attach or replace references,
filter the directory. Always within one organisation: another org's reference never matches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.identity.ref_tables import PersonExternalRef
from upstander.gateway.identity.schemas import ExternalRefIn
from upstander.gateway.models import Person
from upstander.kit.errors import Conflict
from upstander.kit.external_refs import (
    attach_refs,
    has_ref,
    one_per_system,
    parse_external_ref,
    ref_owners,
)


def condition(org_id: uuid.UUID, value: str) -> ColumnElement[bool]:
    """People whom another system calls `value` (`<system>:<id>`), in this organisation."""
    return has_ref(
        PersonExternalRef,
        PersonExternalRef.person_id,
        Person.id,
        org_id,
        *parse_external_ref(value),
    )


async def owners(
    session: AsyncSession, org_id: uuid.UUID, refs: Sequence[ExternalRefIn]
) -> set[uuid.UUID]:
    """The people of the organisation these references name (checks one per system)."""
    one_per_system(ref.system for ref in refs)
    return await ref_owners(session, PersonExternalRef.person_id, org_id, refs)


async def person_by_refs(
    session: AsyncSession, org_id: uuid.UUID, refs: Sequence[ExternalRefIn]
) -> Person | None:
    """The person these references name, if any; two different people are a 409."""
    found = await owners(session, org_id, refs)
    if len(found) > 1:
        raise Conflict("These references name different people.", rule="external_ref_taken")
    if not found:
        return None
    return await session.scalar(
        select(Person).where(Person.id == found.pop(), Person.org_id == org_id)
    )


async def check_free(session: AsyncSession, person: Person, refs: Sequence[ExternalRefIn]) -> None:
    """None of `refs` may name anyone but `person` (409)."""
    if await owners(session, person.org_id, refs) - {person.id}:
        raise Conflict("Another person has this external reference.", rule="external_ref_taken")


def attach(person: Person, refs: Sequence[ExternalRefIn], *, replace: bool = False) -> bool:
    """Give `person` the references it lacks (a new id in a system replaces the old one);
    with `replace`, also drop the systems not in `refs`. The caller checked that none names
    another person. Returns whether anything changed."""
    collection: list[PersonExternalRef] = person.external_refs  # type: ignore[attr-defined]
    return attach_refs(
        collection,
        refs,
        lambda system, external_id: PersonExternalRef(
            org_id=person.org_id, person_id=person.id, system=system, external_id=external_id
        ),
        replace=replace,
    )
