"""The people change feed (`GET /identity/v1/people/changes`): every committed change to the
caller's organisation's people, by any path, in commit order, resumable from an opaque cursor
with no gaps and no repeats while people change; tombstones for people deprovisioned over
SCIM; other organisations' changes never appear; refused without `people:read`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from identity_support import bearer, password_token
from scim_support import SCIM, okta_user, scim_headers, unique_email
from sqlalchemy import select

from upstander.gateway.identity.change_tables import PersonChange
from upstander.gateway.models import Person
from upstander.kit.changefeed import encode_cursor

FEED = "/identity/v1/people/changes"
PROBLEM = "application/problem+json"


async def _page(
    gateway: httpx.AsyncClient, headers: dict[str, str], cursor: str | None, limit: int = 2
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    response = await gateway.get(FEED, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _sync(
    gateway: httpx.AsyncClient, headers: dict[str, str], cursor: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Read the feed to its end, two at a time, as a sync client does."""
    items: list[dict[str, Any]] = []
    while True:
        page = await _page(gateway, headers, cursor)
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor


async def _create(
    gateway: httpx.AsyncClient, headers: dict[str, str], name: str = "Feed Person"
) -> dict[str, Any]:
    email = f"feed.{uuid.uuid4().hex[:10]}@demo.example"
    response = await gateway.post(
        "/identity/v1/people", json={"email": email, "name": name}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _changes(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["person_id"], item["change"]) for item in items]


async def test_every_change_once_in_commit_order_and_resumable(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    _, start = await _sync(gateway, admin_headers)
    first = await _create(gateway, admin_headers, "First")
    renamed = await gateway.patch(
        f"/identity/v1/people/{first['id']}",
        json={"name": "First Renamed", "title": "Organizer"},
        headers=admin_headers,
    )
    assert renamed.status_code == 200, renamed.text
    second = await _create(gateway, admin_headers, "Second")
    gone = await gateway.delete(f"/identity/v1/people/{first['id']}", headers=admin_headers)
    assert gone.status_code == 204

    items, end = await _sync(gateway, admin_headers, start)
    assert _changes(items) == [
        (first["id"], "created"),
        (first["id"], "updated"),
        (second["id"], "created"),
        (first["id"], "deactivated"),
    ]
    # Each entry is the person as they are now.
    now = items[0]["person"]
    assert now["name"] == "First Renamed" and now["title"] == "Organizer"
    assert now["active"] is False and now["version"] == 3
    assert all(item["changed_at"] for item in items)
    assert "password" not in str(items) and "has_password" not in str(items)

    again, same = await _sync(gateway, admin_headers, end)
    assert again == [] and same == end
    # Resuming from the middle gives the rest, once.
    middle = (await _page(gateway, admin_headers, start, limit=2))["next_cursor"]
    rest, _ = await _sync(gateway, admin_headers, middle)
    assert _changes(rest) == _changes(items)[2:]


async def test_a_password_change_is_not_a_change_to_the_directory(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    person = await _create(gateway, admin_headers)
    _, cursor = await _sync(gateway, admin_headers)
    response = await gateway.patch(
        f"/identity/v1/people/{person['id']}",
        json={"password": "a-new-long-password"},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    assert (await _sync(gateway, admin_headers, cursor))[0] == []


async def test_a_person_deprovisioned_over_scim_leaves_a_tombstone(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    scim = await scim_headers(gateway, admin_headers)
    _, start = await _sync(gateway, admin_headers)
    email = unique_email("feed")
    created = await gateway.post(f"{SCIM}/Users", json=okta_user(email, "E-1042"), headers=scim)
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]
    seen, cursor = await _sync(gateway, admin_headers, start)
    assert _changes(seen) == [(person_id, "created")]
    assert seen[0]["external_id"] == "E-1042"
    assert seen[0]["person"]["given_name"] == "Test"

    deleted = await gateway.delete(f"{SCIM}/Users/{person_id}", headers=scim)
    assert deleted.status_code == 204, deleted.text
    tombstones, after_delete = await _sync(gateway, admin_headers, cursor)
    assert _changes(tombstones) == [(person_id, "deleted")]
    assert tombstones[0]["person"] is None and tombstones[0]["external_id"] == "E-1042"
    # From the start: only the tombstone, the earlier changes no longer show.
    from_start, _ = await _sync(gateway, admin_headers, start)
    assert _changes(from_start) == [(person_id, "deleted")]

    # Provisioned again: a person once more, and the tombstone no longer shows.
    back = await gateway.post(f"{SCIM}/Users", json=okta_user(email, "E-1042"), headers=scim)
    assert back.status_code == 201, back.text
    assert back.json()["id"] == person_id
    returned, _ = await _sync(gateway, admin_headers, after_delete)
    assert _changes(returned) == [(person_id, "created")]
    assert returned[0]["person"]["active"] is True
    from_start, _ = await _sync(gateway, admin_headers, start)
    assert _changes(from_start) == [(person_id, "created"), (person_id, "created")]


async def test_other_organisations_changes_never_appear(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b: Any
) -> None:
    _, demo_start = await _sync(gateway, admin_headers)
    beta_all, beta_start = await _sync(gateway, org_b.headers)
    assert str(org_b.person_id) in {item["person_id"] for item in beta_all}
    beta_person = await _create(gateway, org_b.headers, "Beta Person")
    demo_person = await _create(gateway, admin_headers, "Demo Person")

    demo_items, _ = await _sync(gateway, admin_headers, demo_start)
    assert _changes(demo_items) == [(demo_person["id"], "created")]
    beta_items, _ = await _sync(gateway, org_b.headers, beta_start)
    assert _changes(beta_items) == [(beta_person["id"], "created")]
    # Everything a fresh beta sync sees is beta's.
    demo_ids = {item["person_id"] for item in (await _sync(gateway, admin_headers))[0]}
    assert not demo_ids & {item["person_id"] for item in beta_all + beta_items}


async def test_without_people_read_the_feed_is_refused(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    assert (await gateway.get(FEED)).status_code == 401
    staff = await password_token(gateway, "staff@demo.example")
    refused = await gateway.get(FEED, headers=bearer(staff["access_token"]))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    cases_only = await scim_headers(gateway, admin_headers, ("cases:read",))
    narrow = await gateway.get(FEED, headers={"Authorization": cases_only["Authorization"]})
    assert narrow.status_code == 403
    assert narrow.headers["content-type"].startswith(PROBLEM)
    reader = await scim_headers(gateway, admin_headers, ("people:read",))
    allowed = await gateway.get(FEED, headers={"Authorization": reader["Authorization"]})
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize(
    "cursor",
    [
        "nope",
        "W10",
        encode_cursor("people-changes", -1),
        encode_cursor("case-changes", 1),
        "x" * 400,
    ],
)
async def test_a_malformed_cursor_is_a_400_problem(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], cursor: str
) -> None:
    response = await gateway.get(FEED, params={"cursor": cursor}, headers=admin_headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/invalid-cursor")


async def test_no_gaps_and_no_repeats_while_people_change(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], gateway_app: FastAPI
) -> None:
    _, start = await _sync(gateway, admin_headers)
    writing = True

    async def write() -> list[str]:
        nonlocal writing
        try:
            made = await asyncio.gather(*(_create(gateway, admin_headers) for _ in range(12)))
            return [person["id"] for person in made]
        finally:
            writing = False

    async def read() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = start
        while writing:
            page = await _page(gateway, admin_headers, cursor)
            items += page["items"]
            cursor = page["next_cursor"]
            await asyncio.sleep(0)
        rest, _ = await _sync(gateway, admin_headers, cursor)
        return items + rest

    made, read_items = await asyncio.gather(write(), read())
    assert sorted(_changes(read_items)) == sorted((person_id, "created") for person_id in made)
    async with gateway_app.state.sessionmaker() as session:
        numbered = dict(
            (
                await session.execute(
                    select(PersonChange.person_id, PersonChange.seq).where(
                        PersonChange.person_id.in_([uuid.UUID(p) for p in made])
                    )
                )
            ).all()
        )
    assert len(numbered) == len(made)  # one change each
    # The feed gives them in the order of their numbers (commit order).
    order = [numbered[uuid.UUID(item["person_id"])] for item in read_items]
    assert order == sorted(order)


async def test_a_transaction_that_commits_later_is_never_skipped(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], gateway_app: FastAPI
) -> None:
    """A writes first and commits last: its change is numbered at commit, after B's, so a
    sync that read B's change still finds A's (numbered when written, A's would come before
    B's position and be skipped for good)."""
    maker = gateway_app.state.sessionmaker
    async with maker() as probe:
        if probe.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite runs one writer at a time: A's flush would hold B back")
    _, start = await _sync(gateway, admin_headers)
    demo = await gateway.get("/identity/v1/orgs/current", headers=admin_headers)
    org_id = uuid.UUID(demo.json()["id"])
    async with maker() as first:
        late = Person(
            id=uuid.uuid4(),
            org_id=org_id,
            email=f"late.{uuid.uuid4().hex[:8]}@demo.example",
            name="Late",
            roles=["staff"],
            language="en",
            active=True,
            version=1,
        )
        first.add(late)
        await first.flush()
        early = await _create(gateway, admin_headers, "Early")
        seen, cursor = await _sync(gateway, admin_headers, start)
        assert _changes(seen) == [(early["id"], "created")]
        await first.commit()
    later, _ = await _sync(gateway, admin_headers, cursor)
    assert _changes(later) == [(str(late.id), "created")]
