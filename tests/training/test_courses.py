"""The course catalogue: trainers manage it, staff read it, nobody sees another org's."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PATH = "/training/v1/courses"


def course_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Bystander intervention: the five Ds",
        "kind": "bystander_intervention",
        "description": "Distract, delegate, document, delay, direct.",
        "duration_minutes": 60,
        "languages": ["en", "es"],
        "interactive": True,
        "activity_ids": ["https://lms.example.org/xapi/activities/bystander-101"],
        "validity_months": 24,
    }
    body.update(overrides)
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://upstander.dev/problems/")
    return problem


async def test_trainer_creates_a_course_with_location_and_etag(client, caller):
    trainer = caller("trainer")
    response = await client.post(PATH, json=course_body(), headers=trainer.headers)
    assert response.status_code == 201, response.text
    course = response.json()
    assert response.headers["location"] == f"{PATH}/{course['id']}"
    assert response.headers["etag"] == '"1"'
    assert course["org_id"] == str(trainer.org_id)
    assert course["kind"] == "bystander_intervention"
    assert course["languages"] == ["en", "es"]
    assert course["active"] is True
    assert course["version"] == 1
    assert course["created_at"].endswith(("Z", "+00:00"))


async def test_admin_creates_a_course_with_defaults(client, caller):
    admin = caller("admin")
    body = {"title": "Anti-harassment basics", "kind": "anti_harassment", "duration_minutes": 60}
    response = await client.post(PATH, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    course = response.json()
    assert course["languages"] == ["en"]
    assert course["activity_ids"] == []
    assert course["validity_months"] is None
    assert course["interactive"] is False


async def test_staff_reads_a_course_but_cannot_create_one(client, caller):
    trainer = caller("trainer")
    staff = caller("staff", org=trainer.org_id)
    created = (await client.post(PATH, json=course_body(), headers=trainer.headers)).json()

    got = await client.get(f"{PATH}/{created['id']}", headers=staff.headers)
    assert got.status_code == 200
    assert got.json() == created
    assert got.headers["etag"] == '"1"'

    assert_problem(await client.post(PATH, json=course_body(), headers=staff.headers), 403)


async def test_staff_cannot_update_or_archive(client, caller):
    trainer = caller("trainer")
    staff = caller("staff", org=trainer.org_id)
    created = (await client.post(PATH, json=course_body(), headers=trainer.headers)).json()
    url = f"{PATH}/{created['id']}"
    assert_problem(await client.patch(url, json={"title": "x"}, headers=staff.headers), 403)
    assert_problem(await client.delete(url, headers=staff.headers), 403)


async def test_list_filters_by_kind_and_pages_with_a_cursor(client, caller):
    trainer = caller("trainer")
    kinds = ["bystander_intervention", "supervisor_response"] * 3
    created = []
    for number, kind in enumerate(kinds):
        body = course_body(title=f"Course {number}", kind=kind)
        created.append((await client.post(PATH, json=body, headers=trainer.headers)).json())

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(PATH, params=params, headers=trainer.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [course["id"] for course in created]

    supervisors = await client.get(
        PATH, params={"kind": "supervisor_response"}, headers=trainer.headers
    )
    assert [c["title"] for c in supervisors.json()["items"]] == ["Course 1", "Course 3", "Course 5"]
    assert supervisors.json()["next_cursor"] is None


async def test_list_refuses_an_unknown_kind_and_a_bad_cursor(client, caller):
    trainer = caller("trainer")
    assert_problem(await client.get(PATH, params={"kind": "nope"}, headers=trainer.headers), 422)
    assert_problem(await client.get(PATH, params={"cursor": "@@"}, headers=trainer.headers), 400)


async def test_update_bumps_the_version_and_etag(client, caller):
    trainer = caller("trainer")
    created = (await client.post(PATH, json=course_body(), headers=trainer.headers)).json()
    url = f"{PATH}/{created['id']}"

    response = await client.patch(
        url,
        json={"title": "Supervisors: responding to a report", "validity_months": None},
        headers={**trainer.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "Supervisors: responding to a report"
    assert updated["validity_months"] is None
    assert updated["description"] == created["description"]
    assert updated["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert (await client.get(url, headers=trainer.headers)).json() == updated


async def test_update_with_a_stale_if_match_is_412(client, caller):
    trainer = caller("trainer")
    created = (await client.post(PATH, json=course_body(), headers=trainer.headers)).json()
    url = f"{PATH}/{created['id']}"
    first = await client.patch(
        url, json={"duration_minutes": 90}, headers={**trainer.headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200

    stale = await client.patch(
        url, json={"duration_minutes": 30}, headers={**trainer.headers, "If-Match": '"1"'}
    )
    assert assert_problem(stale, 412)["current_version"] == 2
    assert (await client.get(url, headers=trainer.headers)).json()["duration_minutes"] == 90


async def test_update_refuses_null_for_a_required_field(client, caller):
    trainer = caller("trainer")
    created = (await client.post(PATH, json=course_body(), headers=trainer.headers)).json()
    response = await client.patch(
        f"{PATH}/{created['id']}", json={"title": None}, headers=trainer.headers
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "body.title"


async def test_archive_hides_the_course_from_the_default_list(client, caller):
    trainer = caller("trainer")
    created = (await client.post(PATH, json=course_body(), headers=trainer.headers)).json()
    url = f"{PATH}/{created['id']}"

    response = await client.delete(url, headers=trainer.headers)
    assert response.status_code == 204
    archived = (await client.get(url, headers=trainer.headers)).json()
    assert archived["active"] is False
    assert archived["version"] == 2

    listed = (await client.get(PATH, headers=trainer.headers)).json()["items"]
    assert created["id"] not in [c["id"] for c in listed]
    everything = await client.get(PATH, params={"include_archived": True}, headers=trainer.headers)
    assert created["id"] in [c["id"] for c in everything.json()["items"]]


async def test_another_orgs_course_is_not_found(client, caller):
    owner = caller("trainer")
    stranger = caller("trainer")
    created = (await client.post(PATH, json=course_body(), headers=owner.headers)).json()
    url = f"{PATH}/{created['id']}"

    assert_problem(await client.get(url, headers=stranger.headers), 404)
    assert_problem(await client.patch(url, json={"title": "x"}, headers=stranger.headers), 404)
    assert_problem(await client.delete(url, headers=stranger.headers), 404)
    assert (await client.get(PATH, headers=stranger.headers)).json()["items"] == []
    assert (await client.get(url, headers=owner.headers)).json()["active"] is True


async def test_an_unknown_course_is_not_found(client, caller):
    trainer = caller("trainer")
    assert_problem(await client.get(f"{PATH}/{uuid.uuid4()}", headers=trainer.headers), 404)
    assert_problem(await client.get(f"{PATH}/not-a-uuid", headers=trainer.headers), 422)


async def test_unknown_fields_are_a_422_with_errors(client, caller):
    trainer = caller("trainer")
    response = await client.post(PATH, json=course_body(owner="me"), headers=trainer.headers)
    problem = assert_problem(response, 422)
    assert {"field": "body.owner", "message": "Unknown field."} in problem["errors"]


async def test_malformed_json_is_a_400(client, caller):
    trainer = caller("trainer")
    response = await client.post(
        PATH,
        content=b'{"title": ',
        headers={**trainer.headers, "Content-Type": "application/json"},
    )
    assert assert_problem(response, 400)["type"].endswith("/malformed-json")


async def test_a_text_body_is_a_415(client, caller):
    trainer = caller("trainer")
    response = await client.post(
        PATH, content=b"title=x", headers={**trainer.headers, "Content-Type": "text/plain"}
    )
    assert_problem(response, 415)


async def test_oversized_and_invalid_values_are_422(client, caller):
    trainer = caller("trainer")
    bad_bodies = [
        course_body(title="x" * 201),
        course_body(description="x" * 4001),
        course_body(activity_ids=[f"https://lms.example.org/{n}" for n in range(51)]),
        course_body(activity_ids=["https://lms.example.org/" + "x" * 2048]),
        course_body(activity_ids=["not an iri"]),
        course_body(languages=["fr"]),
        course_body(languages=["en", "en"]),
        course_body(kind="pottery"),
        course_body(duration_minutes=0),
        course_body(title=""),
    ]
    for body in bad_bodies:
        response = await client.post(PATH, json=body, headers=trainer.headers)
        problem = assert_problem(response, 422)
        assert problem["errors"], body


async def test_a_missing_or_bad_token_is_401(client, caller, minter):
    assert_problem(await client.get(PATH), 401)
    org = uuid.uuid4()
    expired = minter.mint(org=org, roles=["trainer"], ttl=-60)
    response = await client.get(PATH, headers={"Authorization": f"Bearer {expired}"})
    assert_problem(response, 401)
    assert "www-authenticate" in response.headers


async def test_a_reporter_token_is_refused(client, minter):
    token = minter.mint(org=uuid.uuid4(), roles=[], typ="reporter", report=str(uuid.uuid4()))
    assert_problem(await client.get(PATH, headers={"Authorization": f"Bearer {token}"}), 403)


async def test_every_route_is_documented(app):
    schema = app.openapi()
    operations = {
        op["operationId"]: op
        for path, methods in schema["paths"].items()
        if path.startswith("/training/v1/courses")
        for op in methods.values()
    }
    assert set(operations) == {
        "list_courses",
        "create_course",
        "get_course",
        "update_course",
        "archive_course",
    }
    for operation in operations.values():
        assert operation["tags"] == ["courses"]
        assert "401" in operation["responses"] and "404" in operation["responses"]
    assert "412" in operations["update_course"]["responses"]
