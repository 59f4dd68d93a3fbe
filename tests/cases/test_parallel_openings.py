"""Openings of one organisation run in parallel and queue only for their numbers: a case
from a report takes its number last, just before its transaction commits (cases/service.py
`number_case`), yet numbers stay gapless, one per report, in the order the cases list."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.cases import service
from upstander.cases.models import Case, Outbox, ReporterMode
from upstander.kit.events import CloudEvent

SUBMITTED_AT = "2026-11-24T09:30:00+00:00"


def report_event(org_id: uuid.UUID, report_id: uuid.UUID, mode: str) -> CloudEvent:
    data: dict[str, Any] = {
        "report_id": str(report_id),
        "org_id": str(org_id),
        "org_slug": "demo",
        "mode": mode,
        "submitted_at": SUBMITTED_AT,
        "description": "Shouted at during the volunteer briefing.",
        "categories": ["sexual_harassment"],
    }
    if mode == "identified":
        data["reporter"] = {"person_id": str(uuid.uuid4())}
    return CloudEvent.model_validate(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/intake",
            "type": "upstander.report.submitted",
            "subject": f"report/{report_id}",
            "time": SUBMITTED_AT,
            "datacontenttype": "application/json",
            "orgid": str(org_id),
            "data": data,
        }
    )


async def test_concurrent_openings_of_one_org_are_gapless_ordered_and_announced(
    app: FastAPI,
) -> None:
    org_id = uuid.uuid4()
    reports = [uuid.uuid4() for _ in range(8)]
    modes = ["anonymous", "identified", "confidential", "anonymous"] * 2
    events = [report_event(org_id, r, m) for r, m in zip(reports, modes, strict=True)]
    # The same report again under another event id (intake published it twice): at the same
    # time on PostgreSQL, after the others on SQLite (one writer at a time, its savepoints
    # no real nesting).
    repeat = report_event(org_id, reports[0], "anonymous")
    async with app.state.sessionmaker() as session:
        concurrent = session.get_bind().dialect.name == "postgresql"

    consumer = app.state.event_consumer
    outcomes = await asyncio.gather(
        *(consumer.handle(e) for e in [*events, *([repeat] if concurrent else [])])
    )
    if not concurrent:
        outcomes.append(await consumer.handle(repeat))
    assert set(outcomes) == {"processed"}

    async with app.state.sessionmaker() as session:
        cases = list(await session.scalars(select(Case).where(Case.org_id == org_id)))
        announced = list(
            await session.scalars(select(Outbox).where(Outbox.type == "upstander.case.opened"))
        )
    assert sorted(c.report_id for c in cases) == sorted(reports)  # one case per report
    assert sorted(c.number for c in cases) == [f"DEMO-2026-{n:04d}" for n in range(1, 9)]
    assert [c.version for c in cases] == [1] * 8  # numbering is part of the opening
    # The list's order (created_at) is the numbers' order for the coarse-timed cases.
    coarse = sorted(
        (c for c in cases if c.reporter_mode != ReporterMode.IDENTIFIED),
        key=lambda c: c.created_at,
    )
    assert [c.number for c in coarse] == sorted(c.number for c in coarse)
    # `case.opened` carries each case's final number, never a provisional one.
    numbers = {str(c.id): c.number for c in cases}
    assert len(announced) == len(cases)
    for row in announced:
        data = app.state.events.envelope(row)["data"]
        assert data["number"] == numbers[data["case_id"]]


async def test_an_opening_in_progress_does_not_hold_up_another(app: FastAPI) -> None:
    """Transaction A has opened its case but not numbered it yet; B opens, numbers and
    commits a case of the same organisation meanwhile (on PostgreSQL B would wait for A's
    commit if A held the counter), then A takes the next number."""
    org_id = uuid.uuid4()
    maker = app.state.sessionmaker
    async with maker() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite runs one writer at a time: numbers are taken at once there")
    received = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    clock = app.state.clock

    async def open_unnumbered(session: Any) -> Case:
        return await service.open_case(
            session,
            org_id=org_id,
            org_slug="demo",
            report_id=uuid.uuid4(),
            received_at=received,
            categories=["bullying"],
            clock=clock,
            reporter_mode=ReporterMode.IDENTIFIED,
            number_later=True,
        )

    async with maker() as first, first.begin():
        case_a = await open_unnumbered(first)
        assert service.is_unnumbered(case_a)

        async def other() -> str:
            async with maker() as second, second.begin():
                case_b = await open_unnumbered(second)
                await service.number_case(second, case_b, "demo")
                return case_b.number

        # B would wait for A's commit, forever, if A held the counter.
        assert await asyncio.wait_for(other(), timeout=10) == "DEMO-2026-0001"
        await service.number_case(first, case_a, "demo")
        assert not service.is_unnumbered(case_a)
    assert case_a.number == "DEMO-2026-0002"
