"""The example HR sync client (examples/hr_sync.py) through the gateway: it mirrors the cases
its API client may see from the change feed, picks up exactly what changed on the next run
(a transition, an assignment, an external reference it set itself), and its mirror matches
what the case list says."""

from __future__ import annotations

import uuid

from harness import Platform, load_example


async def _file(platform: Platform) -> None:
    filed = await platform.gateway.post(
        "/intake/v1/reports",
        json={
            "org": "demo",
            "mode": "anonymous",
            "description": f"Comments at the phone bank ({uuid.uuid4().hex[:6]}).",
            "categories": ["sexual_harassment"],
        },
    )
    assert filed.status_code == 201, filed.text


async def test_the_example_sync_client_mirrors_cases_and_then_only_what_changed(
    platform: Platform,
) -> None:
    hr_sync = load_example("hr_sync")
    for _ in range(2):
        await _file(platform)
    await platform.drain()
    async with await platform.api_client(["cases:read", "cases:write"], "HR case system") as http:
        state: dict = {"cursor": None, "cases": {}}
        assert await hr_sync.sync(http, state) >= 2
        listed = (await http.get("/cases/v1/cases", params={"limit": 200})).json()["items"]
        assert set(state["cases"]) == {case["id"] for case in listed}
        assert await hr_sync.sync(http, state) == 0  # nothing new: nothing repeated

        case_id = listed[0]["id"]
        manager = await platform.auth("case_manager@demo.example")
        moved = await platform.gateway.post(
            f"/cases/v1/cases/{case_id}/transitions", json={"to": "triage"}, headers=manager
        )
        assert moved.status_code in (200, 201), moved.text
        tagged = await http.put(
            f"/cases/v1/cases/{case_id}/external-refs", json={"system": "hris", "id": "C-77"}
        )
        assert tagged.status_code == 200, tagged.text
        await _file(platform)
        await platform.drain()

        # Every committed change, in commit order: the transition, the reference, the new case.
        assert await hr_sync.sync(http, state) == 3
        assert state["cases"][case_id]["status"] == "triage"
        assert state["cases"][case_id]["external_refs"] == [{"system": "hris", "id": "C-77"}]
        listed = (await http.get("/cases/v1/cases", params={"limit": 200})).json()["items"]
        assert {case["id"]: case["status"] for case in listed} == {
            key: case["status"] for key, case in state["cases"].items()
        }
