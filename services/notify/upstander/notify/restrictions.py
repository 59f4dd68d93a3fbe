"""Who a case is hidden from, as notify knows it: the `restricted_person_ids` an event carries,
joined with what cases announced since (`upstander.case.restricted`, remembered here). Notices
and webhook fan-out both ask this module, so a restriction added after an event was
published, or an event that arrives late, still keeps the case from those people."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.notify.models import CaseRestriction

RESTRICTED = "upstander.case.restricted"


def as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def uuids(values: Any) -> set[uuid.UUID]:
    """The valid UUIDs of a list from event data (anything else in it is ignored)."""
    if not isinstance(values, list | tuple | set | frozenset):
        return set()
    return {u for u in map(as_uuid, values) if u is not None}


async def remember(
    session: AsyncSession,
    org_id: uuid.UUID,
    case_id: uuid.UUID,
    person_ids: Collection[uuid.UUID],
    *,
    now: datetime,
) -> None:
    """Record that `case_id` is hidden from `person_ids` (idempotent; rows are only added)."""
    if not person_ids:
        return
    known = set(
        await session.scalars(
            select(CaseRestriction.person_id).where(
                CaseRestriction.case_id == case_id, CaseRestriction.person_id.in_(person_ids)
            )
        )
    )
    for person_id in sorted(set(person_ids) - known):
        session.add(
            CaseRestriction(
                org_id=org_id,
                case_id=case_id,
                person_id=person_id,
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()


async def hidden_from(
    session: AsyncSession, org_id: uuid.UUID, data: Mapping[str, Any]
) -> set[uuid.UUID]:
    """Everyone the case of an event's `data` is hidden from: the event's own
    `restricted_person_ids` and every restriction announced for the case since."""
    return await hidden_from_case(
        session,
        org_id,
        as_uuid(data.get("case_id")),
        uuids(data.get("restricted_person_ids")),
    )


async def hidden_from_case(
    session: AsyncSession,
    org_id: uuid.UUID,
    case_id: uuid.UUID | None,
    restricted_person_ids: Collection[uuid.UUID] = (),
) -> set[uuid.UUID]:
    """Everyone case `case_id` is hidden from: the ids an event carried
    (`restricted_person_ids` of a parsed case event) and every restriction announced for the
    case since. No case (a training or policy event): the ids given only."""
    restricted = set(restricted_person_ids)
    if case_id is not None:
        restricted |= set(
            await session.scalars(
                select(CaseRestriction.person_id).where(
                    CaseRestriction.case_id == case_id, CaseRestriction.org_id == org_id
                )
            )
        )
    return restricted
