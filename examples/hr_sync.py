"""An HR case system's sync loop against Upstander: read the case change feed from the cursor
kept last time, fetch each changed case, and keep a local mirror. Webhooks only say "look";
this is what looks (docs/hr-sync.md). Run:
`python examples/hr_sync.py http://localhost:8000 <token> state.json` (the token of an API
client with `cases:read`)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx


async def sync(http: httpx.AsyncClient, state: dict[str, Any]) -> int:
    """Bring `state` (`{"cursor": str | None, "cases": {id: case}}`) up to date; returns how
    many changes were applied. Safe to run again at any time: it resumes from the cursor."""
    applied = 0
    while True:
        params = {"limit": 100, **({"cursor": state["cursor"]} if state.get("cursor") else {})}
        page = (await http.get("/cases/v1/changes", params=params)).raise_for_status().json()
        for change in page["items"]:
            if change["change"] == "deleted":  # a tombstone: deleted past retention
                state["cases"].pop(change["case_id"], None)
                applied += 1
                continue
            answer = await http.get(f"/cases/v1/cases/{change['case_id']}")
            if answer.status_code == 404:  # hidden from us since, or gone
                state["cases"].pop(change["case_id"], None)
            else:
                case = answer.raise_for_status().json()
                case["external_refs"] = change["external_refs"]
                state["cases"][change["case_id"]] = case
            applied += 1
        state["cursor"] = page["next_cursor"]  # only once the page is applied
        if not page["has_more"]:
            return applied


async def run(base_url: str, token: str, state: dict[str, Any]) -> int:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        return await sync(http, state)


def main(base_url: str, token: str, state_file: Path) -> None:
    state = json.loads(state_file.read_text()) if state_file.exists() else {"cases": {}}
    applied = asyncio.run(run(base_url, token, state))
    state_file.write_text(json.dumps(state, indent=2))
    print(f"{applied} changes applied; {len(state['cases'])} cases mirrored")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
