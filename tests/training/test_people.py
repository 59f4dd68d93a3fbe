"""The people projection follows `upstander.person.*` events, idempotently and in order."""

from __future__ import annotations

import uuid
from datetime import timedelta

from training_support import assert_problem, collect

PEOPLE = "/training/v1/people"


async def test_created_event_adds_a_person(client, caller, directory):
    trainer = caller("trainer")
    hired = await directory.hire(trainer.org_id, location="ca", roles=("staff",))
    person = (await client.get(f"{PEOPLE}/{hired['person_id']}", headers=trainer.headers)).json()
    assert person["email"] == hired["email"]
    assert person["location"] == "CA"
    assert person["active"] is True
    assert person["is_supervisor"] is False


async def test_a_report_makes_their_manager_a_supervisor_and_a_leaver_undoes_it(
    client, caller, directory, clock
):
    trainer = caller("trainer")
    boss = await directory.hire(trainer.org_id)
    url = f"{PEOPLE}/{boss['person_id']}"
    clock.advance(timedelta(days=1))
    report = await directory.hire(trainer.org_id, manager=boss)
    promoted = (await client.get(url, headers=trainer.headers)).json()
    assert promoted["is_supervisor"] is True
    assert promoted["supervisor_since"].startswith(clock.now().date().isoformat())

    await directory.deactivate(report)
    assert (await client.get(url, headers=trainer.headers)).json()["is_supervisor"] is False
    listed = await collect(client, PEOPLE, trainer.headers)
    assert report["person_id"] not in [p["id"] for p in listed]
    everyone = await collect(client, PEOPLE, trainer.headers, include_inactive=True)
    assert report["person_id"] in [p["id"] for p in everyone]


async def test_a_supervisor_role_counts_without_reports(client, caller, directory):
    trainer = caller("trainer")
    person = await directory.hire(trainer.org_id, roles=("staff", "supervisor"))
    got = await client.get(f"{PEOPLE}/{person['person_id']}", headers=trainer.headers)
    assert got.json()["is_supervisor"] is True


async def test_a_repeated_event_is_a_duplicate_and_an_older_one_is_ignored(
    client, caller, directory, clock
):
    trainer = caller("trainer")
    person = await directory.hire(trainer.org_id, name="First Name")
    event_id = uuid.uuid4()
    person["name"] = "Second Name"
    first = await directory.send("upstander.person.updated", person, event_id=event_id)
    assert first.json() == {"status": "processed"}
    again = await directory.send("upstander.person.updated", person, event_id=event_id)
    assert again.json() == {"status": "duplicate"}

    stale = {**person, "name": "Stale Name"}
    await directory.send("upstander.person.updated", stale, at=clock.now() - timedelta(hours=1))
    got = await client.get(f"{PEOPLE}/{person['person_id']}", headers=trainer.headers)
    assert got.json()["name"] == "Second Name"


async def test_events_need_a_service_token(client, caller):
    staff = caller("admin")
    response = await client.post(
        "/training/internal/events",
        json={
            "id": str(uuid.uuid4()),
            "source": "/x",
            "type": "upstander.person.created",
            "time": "2026-01-01T00:00:00Z",
            "data": {},
        },
        headers=staff.headers,
    )
    assert_problem(response, 403)


async def test_a_malformed_person_event_is_a_400(client, directory):
    bad = {"person_id": "not-a-uuid", "org_id": str(uuid.uuid4())}
    response = await client.post(
        "/training/internal/events",
        json={
            "id": str(uuid.uuid4()),
            "source": "/gateway",
            "type": "upstander.person.created",
            "time": "2026-01-01T00:00:00Z",
            "orgid": bad["org_id"],
            "data": bad,
        },
        headers=directory.headers,
    )
    assert_problem(response, 400)


async def test_people_of_another_org_are_not_found_and_staff_cannot_list(client, caller, directory):
    owner = caller("trainer")
    person = await directory.hire(owner.org_id)
    stranger = caller("trainer")
    assert_problem(
        await client.get(f"{PEOPLE}/{person['person_id']}", headers=stranger.headers), 404
    )
    assert await collect(client, PEOPLE, stranger.headers) == []
    assert_problem(await client.get(PEOPLE, headers=caller("staff").headers), 403)
