"""External references on courses and completions: unique per organisation and system,
filterable with `?external_ref=system:id`, and upserts by reference so an LMS or HR sync can
be re-run without duplicates."""

from __future__ import annotations

from typing import Any

from training_support import assert_problem, collect

COURSES = "/training/v1/courses"
COMPLETIONS = "/training/v1/completions"


def course_body(ref: str = "C-17", **extra: Any) -> dict[str, Any]:
    return {
        "title": "Bystander intervention",
        "kind": "bystander_intervention",
        "duration_minutes": 60,
        "external_refs": [{"system": "workday", "id": ref}],
        **extra,
    }


async def test_a_course_catalogue_sync_run_twice_makes_no_duplicates(client, caller):
    trainer = caller("trainer")
    first = await client.post(COURSES, json=course_body(), headers=trainer.headers)
    assert first.status_code == 201, first.text
    course = first.json()
    assert course["external_refs"] == [{"system": "workday", "id": "C-17"}]

    again = await client.post(
        COURSES, json=course_body(title="Bystander intervention (2027)"), headers=trainer.headers
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == course["id"]
    assert again.json()["title"] == "Bystander intervention (2027)"
    assert again.json()["version"] == course["version"] + 1
    unchanged = await client.post(
        COURSES, json=course_body(title="Bystander intervention (2027)"), headers=trainer.headers
    )
    assert unchanged.status_code == 200 and unchanged.json()["version"] == course["version"] + 1

    # A second system's reference is added to the same course.
    both = course_body(
        external_refs=[{"system": "workday", "id": "C-17"}, {"system": "cornerstone", "id": "x1"}]
    )
    merged = await client.post(COURSES, json=both, headers=trainer.headers)
    assert merged.status_code == 200
    assert merged.json()["external_refs"] == [
        {"system": "cornerstone", "id": "x1"},
        {"system": "workday", "id": "C-17"},
    ]
    listed = await collect(client, COURSES, trainer.headers)
    assert [c["id"] for c in listed] == [course["id"]]

    found = await collect(client, COURSES, trainer.headers, external_ref="cornerstone:x1")
    assert [c["id"] for c in found] == [course["id"]]
    assert await collect(client, COURSES, trainer.headers, external_ref="workday:C-99") == []
    assert_problem(
        await client.get(COURSES, params={"external_ref": "C-17"}, headers=trainer.headers), 400
    )
    read = await client.get(f"{COURSES}/{course['id']}", headers=trainer.headers)
    assert len(read.json()["external_refs"]) == 2


async def test_course_references_are_unique_per_org_and_system(client, caller):
    trainer = caller("trainer")
    one = (await client.post(COURSES, json=course_body("A"), headers=trainer.headers)).json()
    two = (await client.post(COURSES, json=course_body("B"), headers=trainer.headers)).json()
    assert one["id"] != two["id"]
    clash = course_body(
        external_refs=[{"system": "workday", "id": "A"}, {"system": "lms", "id": "B"}]
    )
    assert (await client.post(COURSES, json=clash, headers=trainer.headers)).status_code == 200
    mixed = course_body(
        external_refs=[{"system": "workday", "id": "B"}, {"system": "lms", "id": "B"}]
    )
    assert_problem(await client.post(COURSES, json=mixed, headers=trainer.headers), 409)
    twice = course_body(
        external_refs=[{"system": "workday", "id": "X"}, {"system": "workday", "id": "Y"}]
    )
    assert_problem(await client.post(COURSES, json=twice, headers=trainer.headers), 409)
    bad = course_body(external_refs=[{"system": "Work Day", "id": "X"}])
    assert_problem(await client.post(COURSES, json=bad, headers=trainer.headers), 422)

    # Another organisation may use the same reference for its own course; it never sees ours.
    other = caller("trainer")
    theirs = await client.post(COURSES, json=course_body("A"), headers=other.headers)
    assert theirs.status_code == 201 and theirs.json()["id"] != one["id"]
    assert await collect(client, COURSES, other.headers, external_ref="lms:B") == []


async def test_a_completion_sync_run_twice_makes_no_duplicates(client, caller, directory):
    trainer = caller("trainer")
    course = (await client.post(COURSES, json=course_body(), headers=trainer.headers)).json()
    person = await directory.hire(trainer.org_id)
    body = {
        "person_id": person["person_id"],
        "course_id": course["id"],
        "completed_at": "2025-12-01T10:00:00Z",
        "score": 80,
        "external_refs": [{"system": "workday", "id": "TR-88"}],
    }
    first = await client.post(COMPLETIONS, json=body, headers=trainer.headers)
    assert first.status_code == 201, first.text
    assert first.json()["external_refs"] == [{"system": "workday", "id": "TR-88"}]
    again = await client.post(COMPLETIONS, json={**body, "score": 90}, headers=trainer.headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["score"] == 90
    listed = await collect(client, COMPLETIONS, trainer.headers)
    assert [c["id"] for c in listed] == [first.json()["id"]]

    found = await collect(client, COMPLETIONS, trainer.headers, external_ref="workday:TR-88")
    assert [c["id"] for c in found] == [first.json()["id"]]
    assert await collect(client, COMPLETIONS, trainer.headers, external_ref="workday:X") == []

    # The same reference for another person's completion is refused.
    someone = await directory.hire(trainer.org_id)
    stolen = {**body, "person_id": someone["person_id"]}
    assert_problem(await client.post(COMPLETIONS, json=stolen, headers=trainer.headers), 409)


async def test_a_completion_recorded_before_gets_the_reference_instead_of_a_duplicate(
    client, caller, directory
):
    trainer = caller("trainer")
    course = (await client.post(COURSES, json=course_body(), headers=trainer.headers)).json()
    person = await directory.hire(trainer.org_id)
    body = {
        "person_id": person["person_id"],
        "course_id": course["id"],
        "completed_at": "2025-12-01T10:00:00Z",
    }
    plain = await client.post(COMPLETIONS, json=body, headers=trainer.headers)
    assert plain.status_code == 201 and plain.json()["external_refs"] == []
    referenced = {**body, "external_refs": [{"system": "lms", "id": "7"}]}
    adopted = await client.post(COMPLETIONS, json=referenced, headers=trainer.headers)
    assert adopted.status_code == 200, adopted.text
    assert adopted.json()["id"] == plain.json()["id"]
    assert adopted.json()["external_refs"] == [{"system": "lms", "id": "7"}]
    # Without a reference, the same completion again is still a conflict.
    assert_problem(await client.post(COMPLETIONS, json=body, headers=trainer.headers), 409)
    # A person reads their own completion with its references.
    me = caller("staff", org=trainer.org_id, person=person["person_id"])
    mine = await collect(client, COMPLETIONS, me.headers)
    assert mine[0]["external_refs"] == [{"system": "lms", "id": "7"}]
