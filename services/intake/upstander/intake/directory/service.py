"""Intake's projection of the gateway's directory: which organisation each person id belongs
to (fed by `upstander.person.*`), so a report that names another organisation's people is
refused. Nothing else about a person is kept: intake has no use for names or roles."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.models import DirectoryPerson
from upstander.kit import directory
from upstander.kit.contracts import PersonEvent


async def record_person(session: AsyncSession, event: PersonEvent, *, now: datetime) -> None:
    """Know that the event's person is a person of its organisation (the kit's projection:
    idempotent; a person never moves between organisations, so an event saying otherwise is
    ignored). Only flushes."""
    await directory.upsert_person(
        session, DirectoryPerson, event, defaults={"created_at": now, "updated_at": now}
    )


async def foreign_people(
    session: AsyncSession, org_id: uuid.UUID, people: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `people` known to be people of another organisation. An id intake does not
    know (a person created moments ago, before their event arrived) is not refused here: the
    cases service checks again when the case opens."""
    wanted = set(people)
    if not wanted:
        return set()
    return set(
        await session.scalars(
            select(DirectoryPerson.id).where(
                DirectoryPerson.id.in_(wanted), DirectoryPerson.org_id != org_id
            )
        )
    )
