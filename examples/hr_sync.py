"""An HR system's sync loop against Upstander: read a change feed from the cursor kept last
time and keep a local mirror, of the cases (fetching each changed case) or of the people
(each change carries the person as they are now). Webhooks only say "look"; this is what
looks (docs/hr-sync.md). Run:
`python examples/hr_sync.py http://localhost:8000 <token> state.json [cases|people]` (the
token of an API client with `cases:read`, or `people:read` for people)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

Change = dict[str, Any]


async def follow(
    http: httpx.AsyncClient,
    path: str,
    state: dict[str, Any],
    cursor_key: str,
    apply: Callable[[Change], Awaitable[None]],
) -> int:
    """Apply every change of the feed at `path` after `state[cursor_key]`, a page at a time;
    returns how many. Safe to run again at any time: it resumes from the cursor."""
    applied = 0
    while True:
        cursor = state.get(cursor_key)
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await http.get(path, params=params)).raise_for_status().json()
        for change in page["items"]:
            await apply(change)
            applied += 1
        state[cursor_key] = page["next_cursor"]  # only once the page is applied
        if not page["has_more"]:
            return applied


async def sync(http: httpx.AsyncClient, state: dict[str, Any]) -> int:
    """Bring `state["cases"]` (`{"cursor": str | None, "cases": {id: case}}`) up to date."""

    async def apply(change: Change) -> None:
        if change["change"] == "deleted":  # a tombstone: deleted past retention
            state["cases"].pop(change["case_id"], None)
            return
        answer = await http.get(f"/cases/v1/cases/{change['case_id']}")
        if answer.status_code == 404:  # hidden from us since, or gone
            state["cases"].pop(change["case_id"], None)
        else:
            case = answer.raise_for_status().json()
            case["external_refs"] = change["external_refs"]
            state["cases"][change["case_id"]] = case

    return await follow(http, "/cases/v1/changes", state, "cursor", apply)


async def sync_people(http: httpx.AsyncClient, state: dict[str, Any]) -> int:
    """Bring `state["people"]` (`{"people_cursor": str | None, "people": {id: person}}`) up
    to date: no fetch needed, each change carries the person as they are now."""

    async def apply(change: Change) -> None:
        if change["change"] == "deleted":  # a tombstone: deprovisioned over SCIM
            state["people"].pop(change["person_id"], None)
        else:
            person = {**change["person"], "external_id": change["external_id"]}
            state["people"][change["person_id"]] = person

    return await follow(http, "/identity/v1/people/changes", state, "people_cursor", apply)


async def run(base_url: str, token: str, state: dict[str, Any], what: str) -> int:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        return await (sync_people if what == "people" else sync)(http, state)


def main(base_url: str, token: str, state_file: Path, what: str = "cases") -> None:
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    state.setdefault(what, {})
    applied = asyncio.run(run(base_url, token, state, what))
    state_file.write_text(json.dumps(state, indent=2))
    print(f"{applied} changes applied; {len(state[what])} {what} mirrored")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), *sys.argv[4:5])
