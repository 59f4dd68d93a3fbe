"""Rules and preferences: which events reach whom and how, as an org's admins set it and as
each person chooses, with the notices their role makes mandatory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from test_notices import case_opened, deliveries_for, inbox_of, mail_files, person

from upstander.kit.clock import FrozenClock
from upstander.notify.models import Channel, Delivery, DeliveryStatus

RULES = "/notify/v1/rules"
PREFERENCES = "/notify/v1/preferences"
# Whole payloads, as their publishers send them (notify reads them through the contracts).
DUE = "2026-03-16T10:00:00+00:00"
DEADLINE = {"deadline": "acknowledge", "due_at": DUE}
EMITTED = [
    "upstander.case.opened",
    "upstander.case.message_posted",
    "upstander.case.assigned",
    "upstander.case.deadline_approaching",
    "upstander.case.deadline_missed",
    "upstander.case.action_overdue",
    "upstander.training.due_soon",
    "upstander.training.overdue",
    "upstander.policy.acknowledgment_due",
    "upstander.training.supervisor_digest",
    "upstander.policy.version_published",
]


@pytest.fixture
def clock(app: Any) -> Iterator[FrozenClock]:
    frozen = FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    real, app.state.clock = app.state.clock, frozen
    yield frozen
    app.state.clock = real


async def staff_person(events: Any, caller: Any, roles: list[str], org: uuid.UUID, **kw: Any):
    """A person in the directory and the same person as an API caller."""
    me = caller(*roles, org=org)
    data = await person(events, org, roles, person_id=str(me.person_id), **kw)
    return me, data


def emails(rows: list[Delivery]) -> list[Delivery]:
    return [d for d in rows if d.channel == Channel.EMAIL]


async def test_default_rules_cover_every_event_the_platform_emits(client, caller):
    admin = caller("admin")
    response = await client.get(RULES, headers=admin.headers)
    assert response.status_code == 200, response.text
    rules = {r["event_type"]: r for r in response.json()["items"]}
    assert set(EMITTED) <= set(rules)
    assert all(r["source"] == "default" for r in rules.values())
    assert rules["upstander.case.opened"]["recipients"] == ["case_handlers"]
    assert rules["upstander.training.supervisor_digest"]["recipients"] == ["supervisor_of_subject"]
    assert rules["upstander.case.deadline_missed"]["urgent"] is True


async def test_only_admins_see_and_change_rules(client, caller):
    staff = caller("case_manager")
    assert (await client.get(RULES, headers=staff.headers)).status_code == 403
    body = {"recipients": ["role:staff"], "channels": ["inbox"], "urgent": False}
    put = await client.put(f"{RULES}/upstander.case.opened", json=body, headers=staff.headers)
    assert put.status_code == 403


async def test_an_override_changes_who_hears_and_deleting_it_restores_the_default(
    app, client, caller, events
):
    admin_caller = caller("admin")
    org = admin_caller.org_id
    admin = await person(events, org, ["admin"])
    manager = await person(events, org, ["case_manager"])
    body = {"recipients": ["role:admin"], "channels": ["inbox"], "urgent": False}
    put = await client.put(
        f"{RULES}/upstander.case.opened", json=body, headers=admin_caller.headers
    )
    assert put.status_code == 200, put.text
    assert put.json() == {**body, "event_type": "upstander.case.opened", "source": "org"}
    listed = (await client.get(RULES, headers=admin_caller.headers)).json()["items"]
    assert {r["event_type"]: r["source"] for r in listed}["upstander.case.opened"] == "org"
    # another org still has the default
    other = (await client.get(RULES, headers=caller("admin").headers)).json()["items"]
    assert {r["event_type"]: r["source"] for r in other}["upstander.case.opened"] == "default"

    await events.publish("upstander.case.opened", case_opened(org), org_id=org)
    assert [m.kind for m in await inbox_of(app, admin)] == ["case.opened"]
    assert emails(await deliveries_for(app, admin)) == []  # the override said inbox only
    assert await inbox_of(app, manager) == []

    deleted = await client.delete(f"{RULES}/upstander.case.opened", headers=admin_caller.headers)
    assert deleted.status_code == 204
    again = await client.delete(f"{RULES}/upstander.case.opened", headers=admin_caller.headers)
    assert again.status_code == 404
    await events.publish("upstander.case.opened", case_opened(org), org_id=org)
    assert len(await inbox_of(app, manager)) == 1
    assert len(await inbox_of(app, admin)) == 1


async def test_a_pattern_rule_reaches_a_role_but_never_a_restricted_person(
    app, client, caller, events
):
    admin = caller("admin")
    org = admin.org_id
    body = {"recipients": ["role:staff", "case_handlers"], "channels": ["inbox", "email"]}
    put = await client.put(f"{RULES}/upstander.case.*", json=body, headers=admin.headers)
    assert put.status_code == 200, put.text
    staff = await person(events, org, ["staff"])
    restricted = await person(events, org, ["staff", "case_manager"])
    manager = await person(events, org, ["case_manager"])
    data = case_opened(org, restricted_person_ids=[restricted["person_id"]], **DEADLINE)
    await events.publish("upstander.case.deadline_approaching", data, org_id=org)
    assert [m.kind for m in await inbox_of(app, staff)] == ["case.deadline_approaching"]
    assert [m.kind for m in await inbox_of(app, manager)] == ["case.deadline_approaching"]
    assert await inbox_of(app, restricted) == []
    assert await deliveries_for(app, restricted) == []
    await app.state.worker.run_once()
    assert mail_files(app, restricted["email"]) == []
    (message,) = mail_files(app, staff["email"])
    assert "DEMO-2026-0001" in message["Subject"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("upstander.case.opened", {"recipients": ["everyone"], "channels": ["inbox"]}, 422),
        ("upstander.case.opened", {"recipients": ["role:staff"], "channels": ["sms"]}, 422),
        ("upstander.case.opened", {"recipients": [], "channels": [], "extra": 1}, 422),
        ("upstander.person.created", {"recipients": ["person_self"], "channels": []}, 400),
        ("not-an-event", {"recipients": [], "channels": []}, 422),
    ],
)
async def test_invalid_rules_are_refused(client, caller, path, body, status):
    admin = caller("admin")
    response = await client.put(f"{RULES}/{path}", json=body, headers=admin.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_training_reminders_reach_the_person_and_the_digest_their_supervisor(app, events):
    org = uuid.uuid4()
    supervisor = await person(events, org, ["staff"], language="es")
    learner = await person(events, org, ["staff"], manager_id=supervisor["person_id"])
    colleague = await person(events, org, ["staff"], manager_id=supervisor["person_id"])
    course = str(uuid.uuid4())
    await events.publish(
        "upstander.training.overdue",
        {
            "person_id": learner["person_id"],
            "course_id": course,
            "requirement_id": course,
            "due_at": DUE,
        },
        org_id=org,
        source="/training",
    )
    await events.publish(
        "upstander.training.supervisor_digest",
        {
            "supervisor_id": supervisor["person_id"],
            "overdue": [{"person_id": learner["person_id"], "course_id": course}],
        },
        org_id=org,
        source="/training",
    )
    (reminder,) = await inbox_of(app, learner)
    assert reminder.kind == "training.overdue" and reminder.link.endswith("/training")
    (digest,) = await inbox_of(app, supervisor)
    assert digest.kind == "training.supervisor_digest"
    assert digest.body == "Las personas a su cargo tienen 1 formaciones vencidas."
    assert learner["name"] not in digest.body
    assert await inbox_of(app, colleague) == []


async def test_preferences_start_at_the_defaults_and_round_trip(client, caller, events):
    me = caller("staff")
    got = await client.get(PREFERENCES, headers=me.headers)
    assert got.status_code == 200, got.text
    assert got.json()["channels"] == {
        "case": ["inbox", "email"],
        "training": ["inbox", "email"],
        "policy": ["inbox", "email"],
    }
    assert got.json()["quiet_hours"] is None and got.json()["mandatory"] == {}
    body = {
        "channels": {"training": ["inbox"], "policy": []},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"},
        "language": "es",
    }
    put = await client.put(PREFERENCES, json=body, headers=me.headers)
    assert put.status_code == 200, put.text
    again = (await client.get(PREFERENCES, headers=me.headers)).json()
    assert again["channels"] == {"case": ["inbox", "email"], "training": ["inbox"], "policy": []}
    assert again["quiet_hours"] == body["quiet_hours"] and again["language"] == "es"


async def test_a_case_manager_cannot_switch_off_case_notices_in_the_app(client, caller):
    me = caller("case_manager")
    body = {"channels": {"case": ["email"]}}
    response = await client.put(PREFERENCES, json=body, headers=me.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/mandatory-notification")
    assert problem["mandatory"] == [{"kind": "case", "channel": "inbox"}]
    assert "case (inbox)" in problem["detail"]
    # email off is fine
    ok = await client.put(PREFERENCES, json={"channels": {"case": ["inbox"]}}, headers=me.headers)
    assert ok.status_code == 200 and ok.json()["mandatory"] == {"case": ["inbox"]}


async def test_an_unknown_time_zone_is_refused(client, caller):
    me = caller("staff")
    body = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}
    response = await client.put(PREFERENCES, json=body, headers=me.headers)
    assert response.status_code == 422, response.text


async def test_only_a_person_has_preferences(client, minter):
    token = minter.mint(org=uuid.uuid4(), roles=["admin"], typ="client")
    response = await client.get(PREFERENCES, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


async def test_preferences_choose_channels_per_kind_and_language(app, client, caller, events):
    org = uuid.uuid4()
    me, data = await staff_person(events, caller, ["staff"], org)
    body = {"channels": {"training": ["inbox"]}, "language": "es"}
    assert (await client.put(PREFERENCES, json=body, headers=me.headers)).status_code == 200
    await events.publish(
        "upstander.training.due_soon",
        {
            "person_id": data["person_id"],
            "course_id": str(uuid.uuid4()),
            "requirement_id": str(uuid.uuid4()),
            "due_at": DUE,
        },
        org_id=org,
    )
    (message,) = await inbox_of(app, data)
    assert message.subject == "Una formación vence pronto"
    assert emails(await deliveries_for(app, data)) == []


async def test_mandatory_notices_arrive_even_if_the_stored_preference_is_off(
    app, client, caller, events
):
    org = uuid.uuid4()
    me, data = await staff_person(events, caller, ["staff"], org)
    off = {"channels": {"case": []}}
    assert (await client.put(PREFERENCES, json=off, headers=me.headers)).status_code == 200
    # later promoted to case manager: the in-app notice is theirs whatever they chose
    await events.publish(
        "upstander.person.updated", {**data, "roles": ["case_manager"]}, org_id=org
    )
    await events.publish("upstander.case.opened", case_opened(org), org_id=org)
    assert [m.kind for m in await inbox_of(app, data)] == ["case.opened"]
    assert emails(await deliveries_for(app, data)) == []


async def test_quiet_hours_hold_back_email_but_not_the_inbox_or_urgent_notices(
    app, client, caller, events, clock
):
    madrid = ZoneInfo("Europe/Madrid")
    clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=madrid).astimezone(UTC))
    org = uuid.uuid4()
    me, data = await staff_person(events, caller, ["case_manager"], org)
    body = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Madrid"}}
    assert (await client.put(PREFERENCES, json=body, headers=me.headers)).status_code == 200

    opened = case_opened(org)
    await events.publish("upstander.case.opened", opened, org_id=org)
    assert len(await inbox_of(app, data)) == 1  # at once
    (queued,) = emails(await deliveries_for(app, data))
    morning = datetime(2026, 3, 3, 7, 0, tzinfo=madrid).astimezone(UTC)
    assert queued.status == DeliveryStatus.PENDING and queued.next_attempt_at == morning

    missed = {**opened, **DEADLINE}
    await events.publish("upstander.case.deadline_missed", missed, org_id=org)  # urgent
    await app.state.worker.run_once()
    (urgent,) = mail_files(app, data["email"])
    assert "deadline was missed" in urgent["Subject"]

    clock.set(morning - timedelta(minutes=1))
    await app.state.worker.run_once()
    assert len(mail_files(app, data["email"])) == 1
    clock.set(morning)
    await app.state.worker.run_once()
    assert len(mail_files(app, data["email"])) == 2


async def test_the_send_log_is_for_admins_pages_by_cursor_and_carries_no_content(
    app, client, caller, events
):
    admin = caller("admin")
    org = admin.org_id
    managers = [await person(events, org, ["case_manager"]) for _ in range(2)]
    opened = await events.publish(
        "upstander.case.opened", case_opened(org, description="NARRATIVE-7f3a"), org_id=org
    )
    await app.state.worker.run_once()
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = await client.get("/notify/v1/deliveries", params=params, headers=admin.headers)
        assert page.status_code == 200, page.text
        seen += page.json()["items"]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert len(seen) == 4 and len({d["id"] for d in seen}) == 4
    assert {(d["channel"], d["status"]) for d in seen} == {("inbox", "sent"), ("email", "sent")}
    assert {d["person_id"] for d in seen} == {m["person_id"] for m in managers}
    assert {d["event_id"] for d in seen} == {opened["id"]}
    text = str(seen)
    for secret in ["NARRATIVE", "DEMO-2026", "@example.org", "params", "subject"]:
        assert secret not in text
    only_email = await client.get(
        "/notify/v1/deliveries", params={"channel": "email"}, headers=admin.headers
    )
    assert {d["channel"] for d in only_email.json()["items"]} == {"email"}
    assert (
        await client.get("/notify/v1/deliveries", headers=caller("staff", org=org).headers)
    ).status_code == 403
    other = await client.get("/notify/v1/deliveries", headers=caller("admin").headers)
    assert other.json()["items"] == []
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(Delivery.id).where(Delivery.org_id == org)) is not None
