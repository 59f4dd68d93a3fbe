"""The people and completion change feeds through the gateway: the example HR sync client
(examples/hr_sync.py) mirrors the directory from the people feed and then picks up exactly
what changed (a new person, a rename, a deactivation, a SCIM deprovisioning); an LMS's
client reads the completions a trainer records, as the training service committed them;
the gateway passes a malformed cursor's 400 problem and a missing scope's 403 through."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from harness import Platform, load_example

PEOPLE_FEED = "/identity/v1/people/changes"
COMPLETION_FEED = "/training/v1/completions/changes"


async def _directory(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    people: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/identity/v1/people", params=params)).json()
        people.update({person["id"]: person for person in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return people


async def test_the_example_client_mirrors_the_directory_from_the_people_feed(
    platform: Platform,
) -> None:
    hr_sync = load_example("hr_sync")
    admin = await platform.auth("admin@demo.example")
    async with (
        await platform.api_client(["people:read", "scim"]) as http,
        await platform.api_client(["cases:read"]) as narrow,
    ):
        state: dict[str, Any] = {"people_cursor": None, "people": {}}
        assert await hr_sync.sync_people(http, state) >= 1
        directory = await _directory(http)
        assert set(state["people"]) <= set(directory)
        assert await hr_sync.sync_people(http, state) == 0  # nothing new, nothing repeated

        email = f"hire.{uuid.uuid4().hex[:8]}@demo.example"
        hired = await platform.gateway.post(
            "/identity/v1/people", json={"email": email, "name": "New Hire"}, headers=admin
        )
        assert hired.status_code == 201, hired.text
        hire_id = hired.json()["id"]
        renamed = await platform.gateway.patch(
            f"/identity/v1/people/{hire_id}", json={"title": "Canvasser"}, headers=admin
        )
        assert renamed.status_code == 200, renamed.text
        scim_user = await http.post(
            "/scim/v2/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"scim.{uuid.uuid4().hex[:8]}@demo.example",
                "name": {"givenName": "Pat", "familyName": "Provisioned"},
                "externalId": "E-2001",
                "active": True,
            },
            headers={"content-type": "application/scim+json"},
        )
        assert scim_user.status_code == 201, scim_user.text
        scim_id = scim_user.json()["id"]

        assert await hr_sync.sync_people(http, state) == 3
        assert state["people"][hire_id]["title"] == "Canvasser"
        assert state["people"][scim_id]["external_id"] == "E-2001"

        left = await platform.gateway.delete(f"/identity/v1/people/{hire_id}", headers=admin)
        assert left.status_code == 204
        gone = await http.delete(f"/scim/v2/Users/{scim_id}")
        assert gone.status_code == 204, gone.text
        assert await hr_sync.sync_people(http, state) == 2
        assert state["people"][hire_id]["active"] is False
        assert scim_id not in state["people"]  # the tombstone dropped it

        directory = await _directory(http)
        assert {key: p["active"] for key, p in state["people"].items()} == {
            key: directory[key]["active"] for key in state["people"]
        }
        assert (await narrow.get(PEOPLE_FEED)).status_code == 403
        bad = await http.get(PEOPLE_FEED, params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_completions_a_trainer_records_reach_the_lms_through_the_feed(
    platform: Platform,
) -> None:
    trainer = await platform.auth("trainer@demo.example")
    await platform.drain()  # the training service knows the directory
    course = await platform.gateway.post(
        "/training/v1/courses",
        json={
            "title": f"Bystander intervention {uuid.uuid4().hex[:6]}",
            "kind": "bystander_intervention",
            "duration_minutes": 60,
        },
        headers=trainer,
    )
    assert course.status_code == 201, course.text
    people = (await platform.gateway.get("/training/v1/people", headers=trainer)).json()["items"]
    person_id = people[0]["id"]
    async with (
        await platform.api_client(["training:read"]) as lms,
        await platform.api_client(["people:read"]) as narrow,
    ):
        _, cursor = await _read(lms, None)
        recorded = []
        for day in (1, 2):
            response = await platform.gateway.post(
                "/training/v1/completions",
                json={
                    "person_id": person_id,
                    "course_id": course.json()["id"],
                    "completed_at": f"2026-11-0{day}T10:00:00Z",
                },
                headers=trainer,
            )
            assert response.status_code == 201, response.text
            recorded.append(response.json()["id"])
        items, end = await _read(lms, cursor)
        assert [(item["completion_id"], item["change"]) for item in items] == [
            (completion_id, "created") for completion_id in recorded
        ]
        assert items[0]["completion"]["person_id"] == person_id
        assert (await _read(lms, end)) == ([], end)
        assert (await narrow.get(COMPLETION_FEED)).status_code == 403
        bad = await lms.get(COMPLETION_FEED, params={"cursor": "not-a-cursor"})
        assert bad.status_code == 400, bad.text
        assert bad.json()["type"].endswith("/invalid-cursor")


async def _read(http: httpx.AsyncClient, cursor: str | None) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await http.get(COMPLETION_FEED, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor
