"""Case files: open one from a report (numbering, deadlines), read one, list them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases import deadlines
from upstander.cases.models import Case, CaseCounter, CaseStatus
from upstander.kit.clock import Clock
from upstander.kit.errors import NotFound
from upstander.kit.pagination import PageParams, paginate

NO_SUCH_CASE = "No such case."
_PREFIX_UNSAFE = re.compile(r"[^A-Z0-9]+")


def case_number(org_slug: str, year: int, sequence: int) -> str:
    """`DEMO-2026-0001`: the org's slug in capitals, the year, a sequence of at least 4 digits."""
    prefix = _PREFIX_UNSAFE.sub("-", org_slug.upper()).strip("-") or "CASE"
    return f"{prefix}-{year}-{sequence:04d}"


async def next_sequence(session: AsyncSession, org_id: uuid.UUID, year: int) -> int:
    """Take the next number of `org_id` for `year`, in the caller's transaction.

    One UPSERT ... RETURNING: on PostgreSQL the counter row stays locked until the transaction
    ends, so concurrent openings queue behind each other; on SQLite the write lock serialises
    them. A rolled-back opening gives its number back."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(CaseCounter)
        .values(org_id=org_id, year=year, last=1)
        .on_conflict_do_update(
            index_elements=[CaseCounter.org_id, CaseCounter.year],
            set_={"last": CaseCounter.last + 1},
        )
        .returning(CaseCounter.last)
    )
    return int((await session.execute(statement)).scalar_one())


async def _by_report(session: AsyncSession, org_id: uuid.UUID, report_id: uuid.UUID) -> Case | None:
    return await session.scalar(
        select(Case).where(Case.org_id == org_id, Case.report_id == report_id)
    )


async def open_case(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    org_slug: str,
    report_id: uuid.UUID,
    received_at: datetime,
    categories: Sequence[str],
    clock: Clock,
) -> Case:
    """Open the case of a report, or return the one it already opened (idempotent on
    `report_id`, so a redelivered `report.submitted` event is harmless). Only flushes."""
    existing = await _by_report(session, org_id, report_id)
    if existing is not None:
        return existing
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received_at = received_at.astimezone(UTC)
    now = clock.now()
    try:
        # A savepoint: if a concurrent opening of the same report wins, only this attempt
        # (its number included) is undone and the caller's transaction carries on.
        async with session.begin_nested():
            year = received_at.year
            sequence = await next_sequence(session, org_id, year)
            case = Case(
                org_id=org_id,
                number=case_number(org_slug, year, sequence),
                status=CaseStatus.NEW,
                categories=list(categories),
                report_id=report_id,
                received_at=received_at,
                acknowledge_by=deadlines.acknowledge_by(received_at),
                feedback_by=deadlines.feedback_by(received_at),
                created_at=now,
                updated_at=now,
            )
            session.add(case)
            await session.flush()
    except IntegrityError:
        existing = await _by_report(session, org_id, report_id)
        if existing is None:
            raise
        return existing
    return case


async def get_case(session: AsyncSession, *, org_id: uuid.UUID, case_id: uuid.UUID) -> Case:
    """A case of `org_id`; `NotFound` for an unknown id or another organisation's case."""
    case = await session.scalar(select(Case).where(Case.org_id == org_id, Case.id == case_id))
    if case is None:
        raise NotFound(NO_SUCH_CASE)
    return case


async def list_cases(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    page: PageParams,
    status: CaseStatus | None = None,
) -> tuple[list[Case], str | None]:
    """Cases of `org_id`, newest first, one keyset page at a time."""
    statement = select(Case).where(Case.org_id == org_id)
    if status is not None:
        statement = statement.where(Case.status == status)
    return await paginate(session, statement, Case, page, descending=True)
