"""The deadline scheduler (once per deadline, at the right time, with a frozen clock), the
organisation's deadline settings, and the hash-chained audit trail."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cases_world import Org, load_case, outbox, problem
from fastapi import FastAPI
from sqlalchemy import select, text

from upstander.cases.audit.service import AuditTrailIsAppendOnly, append, verify
from upstander.cases.models import AuditEntry
from upstander.kit.clock import FrozenClock

APPROACHING = "upstander.case.deadline_approaching"
MISSED = "upstander.case.deadline_missed"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def notices(app: FastAPI) -> list[tuple[str, str, str]]:
    found = [(MISSED, e) for e in await outbox(app, MISSED)]
    found += [(APPROACHING, e) for e in await outbox(app, APPROACHING)]
    return sorted(
        (t.rsplit("_", 1)[1], e["data"]["deadline"], e["data"]["due_at"]) for t, e in found
    )


async def test_the_acknowledgment_deadline_warns_once_then_misses_once(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    # Sent 24 Nov 09:30, anonymous: received at the hour, 09:00 → acknowledge by 1 Dec 09:00.
    _, case_id = await org.report()
    scheduler = app.state.deadlines
    due = "2026-12-01T09:00:00+00:00"

    assert await scheduler.run_once() == 0
    clock.set(datetime(2026, 11, 29, 8, 59, tzinfo=UTC))  # 48 h + 1 min before
    assert await scheduler.run_once() == 0
    clock.advance(timedelta(minutes=1))
    assert await scheduler.run_once() == 1
    assert await scheduler.run_once() == 0
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert await scheduler.run_once() == 1
    assert await scheduler.run_once() == 0

    assert await notices(app) == [
        ("approaching", "acknowledge", due),
        ("missed", "acknowledge", due),
    ]
    [event] = await outbox(app, MISSED)
    assert set(event["data"]) >= {
        "case_id",
        "number",
        "deadline",
        "due_at",
        "restricted_person_ids",
    }
    assert event["data"]["case_id"] == str(case_id)
    assert str(org.involved) in event["data"]["restricted_person_ids"]


async def test_feedback_and_corrective_action_deadlines_fire_until_met(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    _, case_id = await org.report()
    url, headers = f"/cases/v1/cases/{case_id}", org.headers("handler")
    await org.client.post(f"{url}/transitions", json={"to": "triage"}, headers=headers)
    action = await org.client.post(
        f"{url}/corrective-actions",
        json={"description": "Training", "due_at": "2026-11-25T09:30:00Z"},
        headers=headers,
    )
    assert action.status_code == 201, action.text
    scheduler = app.state.deadlines

    assert await scheduler.run_once() == 1  # the action is due within 48 h; ack is done
    done = await org.client.post(
        f"{url}/corrective-actions/{action.json()['id']}/completion", headers=headers
    )
    assert done.json()["completed_at"] is not None
    case = await load_case(app, case_id)
    clock.set(case.feedback_by)
    assert await scheduler.run_once() == 1  # feedback missed; the completed action is quiet
    assert await notices(app) == [
        ("approaching", "action", "2026-11-25T09:30:00+00:00"),
        ("missed", "feedback", case.feedback_by.isoformat()),
    ]


async def test_an_org_may_only_shorten_its_deadlines(app: FastAPI, org: Org) -> None:
    admin = org.headers("candidate")

    default = await org.client.get("/cases/v1/settings", headers=admin)
    too_long = await org.client.put(
        "/cases/v1/settings", json={"acknowledge_days": 8}, headers=admin
    )
    not_admin = await org.client.get("/cases/v1/settings", headers=org.headers("handler"))
    shorter = await org.client.put(
        "/cases/v1/settings",
        json={"jurisdiction_preset": "eu_directive", "acknowledge_days": 3, "feedback_months": 2},
        headers=admin,
    )
    _, case_id = await org.report()

    assert default.json()["acknowledge_days"] == 7 and default.json()["feedback_months"] == 3
    problem(too_long, 422, "validation-error")
    problem(not_admin, 403, "forbidden")
    assert shorter.status_code == 200, shorter.text
    assert (await org.client.get("/cases/v1/settings", headers=admin)).json()[
        "acknowledge_days"
    ] == 3
    case = await load_case(app, case_id)
    assert case.acknowledge_by == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # from the hour
    assert case.feedback_by == datetime(2027, 1, 27, 9, 0, tzinfo=UTC)


async def test_reads_and_changes_are_audited_in_a_verifiable_chain(
    app: FastAPI, org: Org, database_url: str
) -> None:
    _, case_id = await org.report()  # the lookup in `report` lists cases: one entry
    url, handler = f"/cases/v1/cases/{case_id}", org.headers("handler")
    await org.client.get(url, headers=handler)
    await org.client.post(f"{url}/transitions", json={"to": "triage"}, headers=handler)
    await org.client.get(f"{url}/messages", headers=handler)
    auditor = org.admin(["auditor"])

    first = await org.client.get("/cases/v1/audit", params={"limit": 3}, headers=auditor)
    rest = await org.client.get(
        "/cases/v1/audit", params={"cursor": first.json()["next_cursor"]}, headers=auditor
    )
    entries = first.json()["items"] + rest.json()["items"]
    assert [e["action"] for e in entries] == [
        "case.list",
        "case.read",
        "case.transition",
        "message.list",
        "audit.read",  # reading the trail is audited too
    ]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert entries[1]["actor_id"] == str(org.handler) and entries[1]["case_id"] == str(case_id)
    assert entries[2]["detail"] == {"from": "new", "to": "triage"}
    problem(await org.client.get("/cases/v1/audit", headers=handler), 403, "forbidden")
    verified = await org.client.get("/cases/v1/audit/verify", headers=auditor)
    assert verified.json() == {"intact": True, "entries": 6, "first_broken": None}

    async with app.state.engine.begin() as connection:
        await connection.execute(
            text("UPDATE audit_entries SET action = 'case.nothing' WHERE seq = 3")
        )
    broken = (await org.client.get("/cases/v1/audit/verify", headers=auditor)).json()
    assert broken["intact"] is False
    assert broken["first_broken"] == {"seq": 3, "id": entries[2]["id"]}

    async with app.state.sessionmaker() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.seq == 1))
        assert entry is not None
        entry.action = "rewritten"
        with pytest.raises(AuditTrailIsAppendOnly):
            await session.flush()


async def test_concurrent_appends_keep_one_unbroken_chain(app: FastAPI, clock: FrozenClock) -> None:
    org_id = uuid.uuid4()

    async def one(n: int) -> None:
        async with app.state.sessionmaker() as session:
            await append(
                session,
                org_id=org_id,
                actor_kind="person",
                actor_id=str(n),
                action="case.read",
                at=clock.now(),
            )
            await session.commit()

    await asyncio.gather(*(one(n) for n in range(8)))

    async with app.state.sessionmaker() as session:
        seqs = list(
            await session.scalars(select(AuditEntry.seq).where(AuditEntry.org_id == org_id))
        )
        intact, checked, _, _ = await verify(session, org_id)
    assert sorted(seqs) == list(range(1, 9))
    assert (intact, checked) == (True, 8)
