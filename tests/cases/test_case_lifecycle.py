"""After the decision: statistics with small counts suppressed, corrective actions (owner,
status, If-Match, overdue once), retaliation check-ins that can open a linked follow-up case,
retention with legal holds (crypto-shredding), and rerouting when a directory record arrives
late. Cases are closed directly in the database where the workflow itself is not the point
(test_workflow covers it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cases_world import Org, cloud_event, load_case, outbox, problem
from fastapi import FastAPI
from sqlalchemy import LargeBinary, func, select, type_coerce, update

from upstander.cases.models import (
    Case,
    CaseReport,
    CaseStatus,
    DataKey,
    Message,
    RetaliationCheckin,
    Severity,
)
from upstander.kit.clock import FrozenClock
from upstander.kit.crypto import DataKeyMissing, Keyring, Vault


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def close_in_db(app: FastAPI, case_id: uuid.UUID, at: datetime, **values: Any) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(status=CaseStatus.CLOSED, closed_at=at, **values)
        )


# ----------------------------------------------------------------------------- statistics


async def test_stats_suppress_any_figure_from_fewer_than_five_cases(org: Org) -> None:
    for category, n in (("sexual_harassment", 5), ("bullying", 4), ("discrimination", 1)):
        for _ in range(n):
            await org.report(categories=[category])
    manager = org.headers("handler")

    before = (await org.client.get("/cases/v1/stats", headers=manager)).json()
    cases = (await org.client.get("/cases/v1/cases", headers=manager)).json()["items"]
    for case in cases[:5]:  # acknowledging five: medians and rates over five are shown
        moved = await org.client.post(
            f"/cases/v1/cases/{case['id']}/transitions", json={"to": "triage"}, headers=manager
        )
        assert moved.status_code == 201, moved.text
    after = (await org.client.get("/cases/v1/stats", headers=org.admin(["auditor"]))).json()
    empty = await org.client.get(
        "/cases/v1/stats", params={"to": "2026-01-01T00:00:00Z"}, headers=manager
    )
    backwards = await org.client.get(
        "/cases/v1/stats",
        params={"from": "2027-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=manager,
    )
    investigator = await org.client.get("/cases/v1/stats", headers=org.headers("investigator"))

    assert before["total"] == {"value": 10, "suppressed": False}
    assert before["by_category"] == [
        {"category": "bullying", "count": None, "suppressed": True},  # 4
        {"category": "discrimination", "count": None, "suppressed": True},  # 1
        {"category": "sexual_harassment", "count": 5, "suppressed": False},
    ]
    assert before["by_status"] == [{"status": "new", "count": 10, "suppressed": False}]
    assert before["by_month"] == [{"month": "2026-11", "count": 10, "suppressed": False}]
    assert before["median_days_to_acknowledge"] == {
        "value": None,
        "cases": None,
        "suppressed": True,
    }
    assert before["acknowledged_on_time"]["suppressed"] is True
    assert before["acknowledged_on_time"]["rate"] is None

    # new 5 / triage 5: both shown; acknowledged half an hour after the (anonymous, so floored
    # to the hour) receipt time: median 0.02 days, all on time.
    assert {c["status"]: c["count"] for c in after["by_status"]} == {"new": 5, "triage": 5}
    assert after["median_days_to_acknowledge"] == {"value": 0.02, "cases": 5, "suppressed": False}
    assert after["acknowledged_on_time"] == {"met": 5, "cases": 5, "rate": 1.0, "suppressed": False}
    assert after["median_days_to_close"]["suppressed"] is True
    assert after["feedback_on_time"]["suppressed"] is True

    assert empty.json()["total"] == {"value": None, "suppressed": True}
    assert empty.json()["by_category"] == []
    problem(backwards, 422, "validation-error")
    problem(investigator, 403, "forbidden")


# ----------------------------------------------------------------------------- actions


async def test_corrective_actions_have_owners_statuses_etags_and_go_overdue_once(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    _, case_id = await org.report()
    url, handler = f"/cases/v1/cases/{case_id}/corrective-actions", org.headers("handler")
    due = {"description": "Supervisor training", "due_at": "2026-12-01T09:30:00Z"}

    conflicted = await org.client.post(
        url, json={**due, "owner_person_id": str(org.involved)}, headers=handler
    )
    created = await org.client.post(
        url, json={**due, "owner_person_id": str(org.handler)}, headers=handler
    )
    action = created.json()
    stale = await org.client.patch(
        f"{url}/{action['id']}",
        json={"status": "in_progress"},
        headers={**handler, "If-Match": '"7"'},
    )
    started = await org.client.patch(
        f"{url}/{action['id']}",
        json={"status": "in_progress", "owner_person_id": str(org.deputy)},
        headers={**handler, "If-Match": '"1"'},
    )
    bad_owner = await org.client.patch(
        f"{url}/{action['id']}", json={"owner_person_id": str(org.underling)}, headers=handler
    )
    cancelled = await org.client.post(url, json=due, headers=handler)
    await org.client.patch(
        f"{url}/{cancelled.json()['id']}", json={"status": "cancelled"}, headers=handler
    )

    assert problem(conflicted, 409, "conflict-of-interest")["rule"] == "involved"
    assert created.status_code == 201 and action["status"] == "open" and action["version"] == 1
    problem(stale, 412, "stale-version")
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress" and started.headers["etag"] == '"2"'
    assert started.json()["owner_person_id"] == str(org.deputy)
    assert problem(bad_owner, 409, "conflict-of-interest")["rule"] == "reports_to_involved"

    clock.set(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))  # due now (and the ack missed)
    await app.state.deadlines.run_once()
    await app.state.deadlines.run_once()
    [overdue] = await outbox(app, "upstander.case.action_overdue")  # the cancelled one is quiet
    assert overdue["data"] == {
        "case_id": str(case_id),
        "number": overdue["data"]["number"],
        "action_id": action["id"],
        "due_at": "2026-12-01T09:30:00+00:00",
        "restricted_person_ids": overdue["data"]["restricted_person_ids"],
    }
    assert str(org.involved) in overdue["data"]["restricted_person_ids"]

    handler = org.headers("handler")  # minted again: the clock moved on
    done = await org.client.patch(f"{url}/{action['id']}", json={"status": "done"}, headers=handler)
    reopened = await org.client.patch(
        f"{url}/{action['id']}", json={"status": "open"}, headers=handler
    )
    assert done.json()["status"] == "done" and done.json()["completed_at"] is not None
    assert problem(reopened, 409, "conflict")["allowed"] == []


# ----------------------------------------------------------------------------- check-ins


async def test_check_ins_ask_after_closing_and_a_yes_opens_a_linked_urgent_case(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    report_id, case_id = await org.report(language="es")
    closed_at = clock.now()
    await close_in_db(app, case_id, closed_at, severity=Severity.HIGH)
    scheduler = app.state.deadlines

    clock.set(closed_at + timedelta(days=29, hours=23))
    assert await scheduler.run_once() == 0
    clock.set(closed_at + timedelta(days=30))
    assert await scheduler.run_once() == 1
    assert await scheduler.run_once() == 0
    reporter = org.reporter(report_id)

    [checkin] = (await org.client.get("/cases/v1/reporter/checkins", headers=reporter)).json()[
        "items"
    ]
    [question] = (await org.client.get("/cases/v1/reporter/messages", headers=reporter)).json()[
        "items"
    ]
    assert checkin["offset_days"] == 30 and checkin["answered_at"] is None
    assert question["author"] == "system"
    for word in ("represalias", "suspensión", "degradación", "evaluación", "intimidación"):
        assert word in question["body"]
    assert "listas negras" in question["body"]

    answer = {"retaliation": True, "details": "Me quitaron turnos"}
    answered = await org.client.post(
        f"/cases/v1/reporter/checkins/{checkin['id']}", json=answer, headers=reporter
    )
    again = await org.client.post(
        f"/cases/v1/reporter/checkins/{checkin['id']}", json=answer, headers=reporter
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["retaliation"] is True and answered.json()["follow_up_opened"] is True
    assert answered.json()["details"] == "Me quitaron turnos"
    problem(again, 409, "conflict")

    opened = await outbox(app, "upstander.case.opened")
    assert len(opened) == 2
    original, follow_up = opened[0]["data"], opened[1]["data"]
    assert follow_up["case_id"] != original["case_id"]
    assert follow_up["number"] == "DEMO-2026-0002"  # numbered like any case of the org
    assert follow_up["routed_to"] == original["routed_to"]
    assert follow_up["restricted_person_ids"] == original["restricted_person_ids"]
    new = await load_case(app, uuid.UUID(follow_up["case_id"]))
    assert (new.priority, new.categories, new.status) == ("urgent", ["retaliation"], "new")
    links = await org.client.get(
        f"/cases/v1/cases/{case_id}/links", headers=org.headers("reviewer")
    )
    assert [(link["kind"], link["case_id"]) for link in links.json()["items"]] == [
        ("retaliation_follow_up", follow_up["case_id"])
    ]
    hidden = await org.client.get(
        f"/cases/v1/cases/{new.id}",
        headers=org.headers("manager"),  # above the involved
    )
    problem(hidden, 404, "not-found")
    async with app.state.sessionmaker() as session:
        raw = await session.scalar(
            select(type_coerce(RetaliationCheckin.details, LargeBinary)).where(
                RetaliationCheckin.id == uuid.UUID(checkin["id"])
            )
        )
    assert raw is not None and b"turnos" not in bytes(raw)

    clock.set(closed_at + timedelta(days=90))
    await scheduler.run_once()  # the second offset (and the follow-up's own deadlines)
    reporter = org.reporter(report_id)
    listing = (await org.client.get("/cases/v1/reporter/checkins", headers=reporter)).json()
    assert [c["offset_days"] for c in listing["items"]] == [30, 90]


# ----------------------------------------------------------------------------- retention


async def test_retention_shreds_and_deletes_finished_cases_unless_on_hold(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    report_id, doomed = await org.report()
    _, held = await org.report()
    closed_at = clock.now()
    for case_id in (doomed, held):
        await close_in_db(app, case_id, closed_at)
    hold = f"/cases/v1/cases/{held}/legal-hold"
    no_reason = await org.client.put(hold, json={"on": True}, headers=org.admin())
    not_admin = await org.client.put(
        hold, json={"on": True, "reason": "x"}, headers=org.headers("handler")
    )
    on_hold = await org.client.put(
        hold, json={"on": True, "reason": "EEOC charge filed"}, headers=org.admin()
    )
    problem(no_reason, 422, "validation-error")
    problem(not_admin, 403, "forbidden")
    assert on_hold.status_code == 200 and on_hold.json()["legal_hold"] is True

    async with app.state.sessionmaker() as session:  # what a backup would hold
        backup = await session.scalar(
            select(type_coerce(CaseReport.content, LargeBinary)).where(CaseReport.case_id == doomed)
        )
    assert backup is not None

    clock.set(closed_at + timedelta(days=1460))
    assert await app.state.retention.run_once() == 0
    clock.set(closed_at + timedelta(days=1461))
    assert await app.state.retention.run_once() == 1
    assert await app.state.retention.run_once() == 0

    tombstone = await load_case(app, doomed)
    assert tombstone.status == "deleted" and tombstone.deleted_at == clock.now()
    assert tombstone.categories == []
    async with app.state.sessionmaker() as session:
        assert await session.get(DataKey, doomed) is None
        for model in (CaseReport, Message):
            left = await session.scalar(
                select(func.count()).select_from(model).where(model.case_id == doomed)
            )
            assert left == 0, model
        still = await session.scalar(select(CaseReport).where(CaseReport.case_id == held))
        assert still is not None and still.content is not None
    # A fresh vault (another process, a restored backup) cannot open the old blob.
    fresh = Vault(Keyring.from_settings(app.state.settings), app.state.engine, DataKey)
    with pytest.raises(DataKeyMissing):
        await fresh.fetch_dek(doomed)
    with pytest.raises(DataKeyMissing):
        await app.state.vault.fetch_dek(doomed)  # also caches "no key" for the type below
    content_type = CaseReport.__table__.c.content.type
    assert content_type.process_result_value(backup, app.state.engine.dialect) is None

    problem(
        await org.client.get(f"/cases/v1/cases/{doomed}", headers=org.admin()), 404, "not-found"
    )
    problem(
        await org.client.get("/cases/v1/reporter/case", headers=org.reporter(report_id)),
        404,
        "not-found",
    )
    auditor = org.admin(["auditor"])
    trail = await org.client.get(
        "/cases/v1/audit", params={"case_id": str(doomed)}, headers=auditor
    )
    [deleted] = [e for e in trail.json()["items"] if e["action"] == "case.deleted"]
    assert deleted["detail"] == {"number": tombstone.number}
    assert deleted["actor_kind"] == "system"
    verified = await org.client.get("/cases/v1/audit/verify", headers=auditor)
    assert verified.json()["intact"] is True

    lifted = await org.client.put(hold, json={"on": False}, headers=org.admin())
    assert lifted.json()["legal_hold"] is False
    assert await app.state.retention.run_once() == 1


# ----------------------------------------------------------------------------- rerouting


async def test_a_late_directory_record_reroutes_cases_to_reviewers(app: FastAPI, org: Org) -> None:
    org.people["newcomer"] = uuid.uuid4()
    org.people["boss"] = uuid.uuid4()
    _, leader_case = await org.report(involved=["newcomer"])
    _, boss_case = await org.report(involved=["boss"])
    handler = org.headers("handler")
    assert (await load_case(app, leader_case)).routed_to == "case_managers"

    await org.person("newcomer", ["staff"], is_leadership=True)
    await org.person("boss", ["staff"])  # not leadership, manages no case manager yet
    assert (await load_case(app, boss_case)).routed_to == "case_managers"
    await org.person("new_manager", ["case_manager"], "boss")

    assert (await load_case(app, leader_case)).routed_to == "reviewers"
    assert (await load_case(app, boss_case)).routed_to == "reviewers"
    rerouted = await outbox(app, "upstander.case.rerouted")
    assert sorted(e["data"]["case_id"] for e in rerouted) == sorted(
        [str(leader_case), str(boss_case)]
    )
    assert all(e["data"]["routed_to"] == "reviewers" for e in rerouted)
    problem(
        await org.client.get(f"/cases/v1/cases/{leader_case}", headers=handler), 404, "not-found"
    )
    # Redelivered or repeated records do not announce it again.
    await org.send(
        cloud_event(
            "upstander.person.updated",
            {"person_id": str(org.newcomer), "org_id": str(org.id), "is_leadership": True},
            org_id=org.id,
        )
    )
    assert len(await outbox(app, "upstander.case.rerouted")) == 2
