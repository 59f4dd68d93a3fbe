"""Compliance: what is due changes with hires, promotions, moves, leavers, new policy versions
and the passing of time (a FrozenClock), and the roll-ups agree with a brute-force count."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta

from training_support import assert_problem, collect, make_course

COMPLIANCE = "/training/v1/compliance"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def statuses(client, headers, **params) -> dict[str, dict]:
    """person_id → {overall, items: {title: item}}"""
    rows = await collect(client, COMPLIANCE, headers, **params)
    return {
        row["person"]["id"]: {
            "status": row["status"],
            "items": {item["title"]: item for item in row["items"]},
        }
        for row in rows
    }


async def adopt(client, headers, key: str) -> dict[str, dict]:
    response = await client.post(f"/training/v1/requirements/presets/{key}/adopt", headers=headers)
    assert response.status_code == 200, response.text
    return {r["audience"]: r for r in response.json()["requirements"]}


async def test_new_hire_is_due_then_overdue_then_compliant(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    rules = await adopt(client, trainer.headers, "illinois")
    hire = await directory.hire(trainer.org_id, location="IL")
    item = (await statuses(client, trainer.headers))[hire["person_id"]]["items"][
        "Illinois: annual training"
    ]
    assert item["status"] == "due"
    assert item["due_at"].startswith("2027-01-05")

    clock.set(datetime(2027, 1, 6, tzinfo=UTC))
    assert (await statuses(client, trainer.headers))[hire["person_id"]]["status"] == "overdue"

    completion = {
        "person_id": hire["person_id"],
        "course_id": rules["everyone"]["course_id"],
        "completed_at": "2027-01-06T00:00:00Z",
    }
    assert (
        await client.post("/training/v1/completions", json=completion, headers=trainer.headers)
    ).status_code == 201
    person = (await statuses(client, trainer.headers))[hire["person_id"]]
    assert person["status"] == "compliant"
    assert person["items"]["Illinois: annual training"]["expires_at"].startswith("2028-01-06")


async def test_recurrence_expires_a_completion(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    await client.post(
        "/training/v1/requirements",
        headers=trainer.headers,
        json={
            "course_id": course["id"],
            "name": "Annual",
            "audience": "everyone",
            "due_within_days": 30,
            "recurrence_months": 12,
        },
    )
    person = await directory.hire(trainer.org_id)
    await client.post(
        "/training/v1/completions",
        headers=trainer.headers,
        json={
            "person_id": person["person_id"],
            "course_id": course["id"],
            "completed_at": "2026-01-31T12:00:00Z",
        },
    )

    clock.set(datetime(2027, 1, 31, 11, 0, tzinfo=UTC))
    item = (await statuses(client, trainer.headers))[person["person_id"]]["items"]["Annual"]
    assert item["status"] == "compliant"
    assert item["expires_at"].startswith("2027-01-31T12:00")
    clock.set(datetime(2027, 1, 31, 13, 0, tzinfo=UTC))
    item = (await statuses(client, trainer.headers))[person["person_id"]]["items"]["Annual"]
    assert item["status"] == "expired"


async def test_too_short_a_completion_does_not_count(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    rules = await adopt(client, trainer.headers, "connecticut")
    person = await directory.hire(trainer.org_id, location="CT")
    await client.post(
        "/training/v1/completions",
        headers=trainer.headers,
        json={
            "person_id": person["person_id"],
            "course_id": rules["everyone"]["course_id"],
            "completed_at": "2026-01-05T08:00:00Z",
            "duration_minutes": 60,
        },
    )
    assert (await statuses(client, trainer.headers))[person["person_id"]]["status"] == "due"


async def test_promotion_to_supervisor_starts_the_supervisor_clock(
    client, caller, directory, clock
):
    clock.set(START)
    trainer = caller("trainer")
    await adopt(client, trainer.headers, "california")
    lead = await directory.hire(trainer.org_id, location="CA")
    before = (await statuses(client, trainer.headers))[lead["person_id"]]["items"]
    assert list(before) == ["California SB 1343: non-supervisory staff"]

    clock.set(START + timedelta(days=100))
    await directory.hire(trainer.org_id, location="CA", manager=lead)
    after = (await statuses(client, trainer.headers))[lead["person_id"]]["items"]
    assert list(after) == ["California SB 1343: supervisors"]
    due = datetime.fromisoformat(after["California SB 1343: supervisors"]["due_at"])
    assert due == START + timedelta(days=283)


async def test_moving_to_california_makes_its_training_due(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    await adopt(client, trainer.headers, "california")
    person = await directory.hire(trainer.org_id, location="TX")
    assert (await statuses(client, trainer.headers))[person["person_id"]]["items"] == {}

    clock.set(START + timedelta(days=40))
    await directory.update(person, location="CA")
    items = (await statuses(client, trainer.headers))[person["person_id"]]["items"]
    item = items["California SB 1343: non-supervisory staff"]
    assert item["status"] == "due"
    assert datetime.fromisoformat(item["due_at"]) == START + timedelta(days=40 + 183)


async def test_a_leaver_drops_out_and_an_exemption_counts(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    rules = await adopt(client, trainer.headers, "illinois")
    stays = await directory.hire(trainer.org_id, location="IL")
    leaves = await directory.hire(trainer.org_id, location="IL")
    assert set(await statuses(client, trainer.headers)) == {stays["person_id"], leaves["person_id"]}
    await directory.deactivate(leaves)
    assert set(await statuses(client, trainer.headers)) == {stays["person_id"]}

    response = await client.post(
        f"/training/v1/requirements/{rules['everyone']['id']}/exemptions",
        json={"person_id": stays["person_id"], "reason": "Trained elsewhere this year"},
        headers=trainer.headers,
    )
    assert response.status_code == 201, response.text
    person = (await statuses(client, trainer.headers))[stays["person_id"]]
    assert person["status"] == "compliant"
    assert person["items"]["Illinois: annual training"]["status"] == "exempt"


async def test_a_new_policy_version_is_due_again(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    person = await directory.hire(trainer.org_id)
    me = caller("staff", org=trainer.org_id, person=person["person_id"])
    policy = (
        await client.post(
            "/training/v1/policies", json={"title": "Respect policy"}, headers=trainer.headers
        )
    ).json()
    versions = f"/training/v1/policies/{policy['id']}/versions"
    v1 = await client.post(
        versions, json={"body": "Be kind.", "due_days": 14}, headers=trainer.headers
    )
    assert v1.status_code == 201, v1.text
    assert (await statuses(client, me.headers))[person["person_id"]]["status"] == "due"

    ack = await client.post(f"{versions}/1/acknowledge", headers=me.headers)
    assert ack.status_code == 201, ack.text
    assert (await client.post(f"{versions}/1/acknowledge", headers=me.headers)).status_code == 200
    assert (await statuses(client, me.headers))[person["person_id"]]["status"] == "compliant"

    clock.set(START + timedelta(days=30))
    await client.post(versions, json={"body": "Be kinder.", "due_days": 7}, headers=trainer.headers)
    item = (await statuses(client, me.headers))[person["person_id"]]["items"]["Respect policy"]
    assert (item["status"], item["policy_version"]) == ("due", 2)
    clock.set(START + timedelta(days=38))
    assert (await statuses(client, me.headers))[person["person_id"]]["status"] == "overdue"

    newcomer = caller("staff", org=trainer.org_id)
    assert_problem(await client.post(f"{versions}/1/acknowledge", headers=newcomer.headers), 409)
    assert (await client.post(f"{versions}/2/acknowledge", headers=me.headers)).status_code == 201
    assert (await statuses(client, me.headers))[person["person_id"]]["status"] == "compliant"

    outbox = await client.get(
        "/training/v1/admin/outbox",
        params={"status": "pending"},
        headers=caller("admin", org=trainer.org_id).headers,
    )
    published = [
        e for e in outbox.json()["items"] if e["type"] == "upstander.policy.version_published"
    ]
    assert len(published) == 2 and published[0]["destination"] == "notify"


async def test_who_sees_whom_and_leadership_first(client, caller, directory, clock):
    clock.set(START)
    trainer = caller("trainer")
    await adopt(client, trainer.headers, "illinois")
    staffer = await directory.hire(trainer.org_id, location="IL")
    boss = await directory.hire(trainer.org_id, location="IL")
    report = await directory.hire(trainer.org_id, location="IL", manager=boss)
    deep = await directory.hire(trainer.org_id, location="IL", manager=report)
    chief = await directory.hire(trainer.org_id, location="IL", leadership=True)

    everyone = await collect(client, COMPLIANCE, trainer.headers, limit=2)
    ids = [row["person"]["id"] for row in everyone]
    assert ids[0] == chief["person_id"]
    assert set(ids) == {p["person_id"] for p in (staffer, boss, report, deep, chief)}
    assert len(ids) == 5

    as_boss = caller("staff", org=trainer.org_id, person=boss["person_id"])
    assert set(await statuses(client, as_boss.headers)) == {
        boss["person_id"],
        report["person_id"],
        deep["person_id"],
    }
    as_staffer = caller("staff", org=trainer.org_id, person=staffer["person_id"])
    assert set(await statuses(client, as_staffer.headers)) == {staffer["person_id"]}
    team = await statuses(client, trainer.headers, team=boss["person_id"])
    assert set(team) == {report["person_id"], deep["person_id"]}
    assert await statuses(client, caller("trainer").headers) == {}
    assert_problem(
        await client.get(COMPLIANCE, params={"cursor": "!!"}, headers=trainer.headers), 400
    )


async def test_summary_matches_a_brute_force_count_and_csv_export(client, caller, directory, clock):
    clock.set(START - timedelta(days=400))
    trainer = caller("trainer")
    await adopt(client, trainer.headers, "california")
    await adopt(client, trainer.headers, "illinois")
    rules = await adopt(client, trainer.headers, "new_york")
    boss = await directory.hire(trainer.org_id, location="CA", roles=("staff", "field"))
    people = [boss]
    for number in range(9):
        location = ["CA", "IL", "NY"][number % 3]
        people.append(
            await directory.hire(
                trainer.org_id,
                location=location,
                roles=("staff",) if number % 2 else ("trainer",),
                manager=boss if number < 4 else None,
            )
        )
    clock.set(START)
    for person in people[::3]:
        if person["location"] == "NY":
            await client.post(
                "/training/v1/completions",
                headers=trainer.headers,
                json={
                    "person_id": person["person_id"],
                    "course_id": rules["everyone"]["course_id"],
                    "completed_at": "2026-01-01T00:00:00Z",
                },
            )

    rows = await collect(client, COMPLIANCE, trainer.headers)
    summary = (await client.get(f"{COMPLIANCE}/summary", headers=trainer.headers)).json()

    def brute(predicate) -> tuple[int, int, Counter]:
        chosen = [row for row in rows if predicate(row["person"])]
        return (
            len(chosen),
            sum(row["status"] == "compliant" for row in chosen),
            Counter(item["status"] for row in chosen for item in row["items"]),
        )

    def check(group, predicate) -> None:
        people_count, compliant, items = brute(predicate)
        assert group["people"] == people_count, group
        assert group["people_compliant"] == compliant, group
        assert {k: v for k, v in group["items"].items() if v} == dict(items), group

    (org,) = summary["org"]
    check(org, lambda person: True)
    for group in summary["location"]:
        check(group, lambda person, key=group["key"]: (person["location"] or "unknown") == key)
    for group in summary["role"]:
        check(group, lambda person, key=group["key"]: key in person["roles"])
    for group in summary["team"]:
        check(group, lambda person, key=group["key"]: str(person["manager_id"] or "none") == key)
    assert sum(g["people"] for g in summary["location"]) == 10

    export = await client.get(f"{COMPLIANCE}.csv", headers=trainer.headers)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(export.text)))
    assert Counter(line["status"] for line in lines) == Counter(
        item["status"] for row in rows for item in row["items"]
    )
    overdue_only = await collect(client, COMPLIANCE, trainer.headers, status="overdue")
    assert {row["person"]["id"] for row in overdue_only} == {
        row["person"]["id"]
        for row in rows
        if any(item["status"] == "overdue" for item in row["items"])
    }
