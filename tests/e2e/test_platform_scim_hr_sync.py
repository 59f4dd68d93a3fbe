"""The example HR sync client (examples/hr_sync.py) through the gateway: it mirrors the cases
its API client may see from the change feed, picks up exactly what changed on the next run
(a transition, an assignment, an external reference it set itself), and its mirror matches
what the case list says."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

import httpx
from harness import Platform

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hr_sync.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hr_sync_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _hr_client(platform: Platform) -> httpx.AsyncClient:
    created = await platform.gateway.post(
        "/identity/v1/clients",
        json={"name": "HR case system", "scopes": ["cases:read", "cases:write"]},
        headers=await platform.auth("admin@demo.example"),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], body["client_secret"]),
    )
    assert token.status_code == 200, token.text
    return httpx.AsyncClient(
        transport=platform.transport,
        base_url=str(platform.gateway.base_url),
        headers={"authorization": f"Bearer {token.json()['access_token']}"},
        timeout=30,
    )


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
    hr_sync = _example()
    for _ in range(2):
        await _file(platform)
    await platform.drain()
    async with await _hr_client(platform) as http:
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
