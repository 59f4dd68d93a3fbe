"""Helpers shared by the training tests (a plain module: `tests/training` is on sys.path)."""

from __future__ import annotations

from typing import Any

import httpx


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://upstander.dev/problems/")
    return problem


async def make_course(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict:
    body: dict[str, Any] = {
        "title": "Bystander intervention",
        "kind": "bystander_intervention",
        "duration_minutes": 60,
        "interactive": True,
        "activity_ids": ["https://lms.example.org/xapi/activities/bystander-101"],
    }
    body.update(overrides)
    response = await client.post("/training/v1/courses", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def collect(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a keyset-paged list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
