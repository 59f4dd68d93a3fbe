"""Requirements and presets: trainers define them, adopting a preset is idempotent."""

from __future__ import annotations

from training_support import assert_problem, collect, make_course

REQS = "/training/v1/requirements"


async def test_trainer_creates_a_requirement_and_staff_reads_it(client, caller):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    body = {
        "course_id": course["id"],
        "name": "Everyone: bystander",
        "audience": "everyone",
        "due_within_days": 30,
        "recurrence_months": 12,
    }
    created = await client.post(REQS, json=body, headers=trainer.headers)
    assert created.status_code == 201, created.text
    requirement = created.json()
    assert requirement["audience"] == "everyone" and requirement["version"] == 1
    staff = caller("staff", org=trainer.org_id)
    assert [r["id"] for r in await collect(client, REQS, staff.headers)] == [requirement["id"]]
    assert_problem(await client.post(REQS, json=body, headers=staff.headers), 403)

    retired = await client.patch(
        f"{REQS}/{requirement['id']}",
        json={"active": False},
        headers={**trainer.headers, "If-Match": '"1"'},
    )
    assert retired.json()["version"] == 2
    assert await collect(client, REQS, staff.headers) == []


async def test_bad_audiences_and_unknown_courses_are_422(client, caller):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    base = {"course_id": course["id"], "name": "x", "due_within_days": 30}
    for audience in ["nobody", "role:", "location:C4", "everyone; drop"]:
        response = await client.post(
            REQS, json={**base, "audience": audience}, headers=trainer.headers
        )
        assert_problem(response, 422)
    other = caller("trainer")
    response = await client.post(REQS, json={**base, "audience": "everyone"}, headers=other.headers)
    assert assert_problem(response, 422)["errors"][0]["field"] == "body.course_id"


async def test_presets_are_listed_with_their_rules(client, caller):
    presets = (
        await client.get("/training/v1/requirement-presets", headers=caller("staff").headers)
    ).json()["items"]
    by_key = {p["key"]: p for p in presets}
    assert set(by_key) == {"california", "new_york", "illinois", "connecticut"}
    ca = {rule["audience"]: rule for rule in by_key["california"]["rules"]}
    assert ca["supervisors"]["min_minutes"] == 120 and ca["non_supervisors"]["min_minutes"] == 60
    assert ca["supervisors"]["due_within_days"] == 183
    assert ca["supervisors"]["recurrence_months"] == 24
    assert by_key["new_york"]["rules"][0]["interactive_required"] is True
    assert by_key["new_york"]["rules"][0]["recurrence_months"] == 12
    assert by_key["illinois"]["rules"][0]["recurrence_months"] == 12
    ct = by_key["connecticut"]["rules"][0]
    assert (ct["min_minutes"], ct["due_within_days"], ct["recurrence_months"]) == (120, 183, 120)


async def test_adopting_a_preset_creates_courses_once(client, caller):
    trainer = caller("admin")
    first = await client.post(f"{REQS}/presets/california/adopt", headers=trainer.headers)
    assert first.status_code == 200, first.text
    adopted = first.json()
    assert adopted["created_requirements"] == 2 and len(adopted["created_courses"]) == 2
    assert {r["location"] for r in adopted["requirements"]} == {"CA"}

    again = (await client.post(f"{REQS}/presets/california/adopt", headers=trainer.headers)).json()
    assert again["created_requirements"] == 0 and again["created_courses"] == []
    assert [r["id"] for r in again["requirements"]] == [r["id"] for r in adopted["requirements"]]
    courses = await collect(client, "/training/v1/courses", trainer.headers)
    assert len(courses) == 2

    assert_problem(
        await client.post(f"{REQS}/presets/atlantis/adopt", headers=trainer.headers), 404
    )
    assert_problem(
        await client.post(
            f"{REQS}/presets/illinois/adopt", headers=caller("staff", org=trainer.org_id).headers
        ),
        403,
    )


async def test_adopting_reuses_an_existing_course_of_the_same_title(client, caller):
    trainer = caller("trainer")
    course = await make_course(
        client, trainer.headers, title="Illinois harassment prevention", kind="anti_harassment"
    )
    adopted = (await client.post(f"{REQS}/presets/illinois/adopt", headers=trainer.headers)).json()
    assert adopted["created_courses"] == []
    assert adopted["requirements"][0]["course_id"] == course["id"]
