"""The completion change feed (`GET /training/v1/completions/changes`): every completion
recorded by any channel (by hand, an upsert by external reference, a CSV import, an xAPI
statement) in commit order, resumable with no gaps and no repeats while completions are
recorded; tombstones when a voiding statement removes one; other organisations' completions
never appear; a person reads their own; refused without `training:read`."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from training_support import assert_problem, make_course

from upstander.kit.changefeed import encode_cursor
from upstander.training.completions.change_tables import CompletionChange
from upstander.training.models import Completion, CompletionSource

FEED = "/training/v1/completions/changes"
COMPLETIONS = "/training/v1/completions"
STATEMENTS = "/training/v1/xapi/statements"
XAPI_VERSION = {"X-Experience-API-Version": "1.0.3"}
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ACTIVITY = "https://lms.example.org/xapi/activities/bystander-101"


async def _page(
    client: httpx.AsyncClient, headers: dict[str, str], cursor: str | None, limit: int = 2
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    response = await client.get(FEED, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _sync(
    client: httpx.AsyncClient, headers: dict[str, str], cursor: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        page = await _page(client, headers, cursor)
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor


def _changes(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["completion_id"], item["change"]) for item in items]


async def _record(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    person: dict[str, Any],
    course: dict[str, Any],
    when: str,
    **extra: Any,
) -> httpx.Response:
    body = {
        "person_id": person["person_id"],
        "course_id": course["id"],
        "completed_at": when,
        **extra,
    }
    return await client.post(COMPLETIONS, json=body, headers=headers)


async def test_every_channel_in_commit_order_once_and_resumable(client, caller, directory):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    dana = await directory.hire(trainer.org_id, email="dana@demo.example")
    sam = await directory.hire(trainer.org_id, email="sam@demo.example")
    assert await _sync(client, trainer.headers) == ([], encode_cursor("completion-changes", 0))

    manual = await _record(client, trainer.headers, dana, course, "2025-12-01T10:00:00Z")
    assert manual.status_code == 201, manual.text
    ref = [{"system": "workday", "id": "TR-88"}]
    upserted = await _record(
        client, trainer.headers, sam, course, "2025-12-02T10:00:00Z", external_refs=ref
    )
    assert upserted.status_code == 201, upserted.text
    again = await _record(
        client, trainer.headers, sam, course, "2025-12-02T10:00:00Z", external_refs=ref, score=80
    )
    assert again.status_code == 200, again.text
    csv = "email,course,completed_at\nsam@demo.example,Bystander intervention,2025-12-03\n"
    imported = await client.post(
        f"{COMPLETIONS}/imports",
        content=csv,
        headers={**trainer.headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200 and imported.json()["accepted"] == 1, imported.text
    statement = {
        "actor": {"objectType": "Agent", "mbox": "mailto:dana@demo.example"},
        "verb": {"id": COMPLETED},
        "object": {"objectType": "Activity", "id": ACTIVITY},
        "timestamp": "2025-12-04T10:00:00Z",
    }
    stored = await client.post(
        STATEMENTS, json=statement, headers={**trainer.headers, **XAPI_VERSION}
    )
    assert stored.status_code == 200, stored.text

    items, end = await _sync(client, trainer.headers)
    sources = [item["completion"]["source"] for item in items]
    assert sources == ["manual", "manual", "manual", "csv", "xapi"]
    upsert_id = upserted.json()["id"]
    assert _changes(items)[:3] == [
        (manual.json()["id"], "created"),
        (upsert_id, "created"),
        (upsert_id, "updated"),
    ]
    assert [item["change"] for item in items[3:]] == ["created", "created"]
    assert items[2]["completion"]["score"] == 80  # as it is now
    assert items[1]["completion"]["external_refs"] == ref
    assert {item["person_id"] for item in items} == {dana["person_id"], sam["person_id"]}

    assert await _sync(client, trainer.headers, end) == ([], end)
    middle = (await _page(client, trainer.headers, None, limit=2))["next_cursor"]
    rest, _ = await _sync(client, trainer.headers, middle)
    assert _changes(rest) == _changes(items)[2:]


async def test_a_voided_completion_leaves_a_tombstone(client, caller, directory):
    trainer = caller("trainer")
    await make_course(client, trainer.headers)
    dana = await directory.hire(trainer.org_id, email="dana@demo.example")
    headers = {**trainer.headers, **XAPI_VERSION}
    statement = {
        "actor": {"objectType": "Agent", "mbox": "mailto:dana@demo.example"},
        "verb": {"id": COMPLETED},
        "object": {"objectType": "Activity", "id": ACTIVITY},
    }
    [statement_id] = (await client.post(STATEMENTS, json=statement, headers=headers)).json()
    [created], cursor = await _sync(client, trainer.headers)
    assert created["change"] == "created" and created["completion"]["source"] == "xapi"

    void = {
        "actor": {"objectType": "Agent", "mbox": "mailto:dana@demo.example"},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": statement_id},
    }
    assert (await client.post(STATEMENTS, json=void, headers=headers)).status_code == 200
    tombstones, _ = await _sync(client, trainer.headers, cursor)
    assert _changes(tombstones) == [(created["completion_id"], "deleted")]
    assert tombstones[0]["completion"] is None
    assert tombstones[0]["person_id"] == dana["person_id"]
    assert tombstones[0]["course_id"] == created["course_id"]
    # From scratch: the tombstone only.
    assert _changes((await _sync(client, trainer.headers))[0]) == _changes(tombstones)


async def test_other_organisations_completions_never_appear(client, caller, directory):
    first, second = caller("trainer"), caller("trainer")
    for trainer in (first, second):
        course = await make_course(client, trainer.headers)
        person = await directory.hire(trainer.org_id)
        response = await _record(client, trainer.headers, person, course, "2025-12-01T10:00:00Z")
        assert response.status_code == 201, response.text
    mine, _ = await _sync(client, first.headers)
    theirs, _ = await _sync(client, second.headers)
    assert len(mine) == len(theirs) == 1
    assert mine[0]["completion"]["org_id"] == str(first.org_id)
    assert theirs[0]["completion"]["org_id"] == str(second.org_id)
    # The other organisation's cursor reads nothing of theirs here either.
    _, their_end = await _sync(client, second.headers)
    assert (await _sync(client, first.headers, their_end))[0] == []


async def test_a_person_reads_their_own_and_scopes_are_enforced(client, caller, directory, minter):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    dana = await directory.hire(trainer.org_id)
    sam = await directory.hire(trainer.org_id)
    for person in (dana, sam):
        response = await _record(client, trainer.headers, person, course, "2025-12-01T10:00:00Z")
        assert response.status_code == 201, response.text
    me = caller("staff", org=trainer.org_id, person=uuid.UUID(dana["person_id"]))
    own, _ = await _sync(client, me.headers)
    assert [item["person_id"] for item in own] == [dana["person_id"]]

    assert_problem(await client.get(FEED), 401)
    narrowed = caller("trainer", org=trainer.org_id, scope="cases:read")
    assert_problem(await client.get(FEED, headers=narrowed.headers), 403)

    def client_headers(scope: str) -> dict[str, str]:
        token = minter.mint(org=trainer.org_id, roles=[], sub="cl_lms", typ="client", scope=scope)
        return {"Authorization": f"Bearer {token}"}

    everything, _ = await _sync(client, client_headers("training:read"))
    assert len(everything) == 2
    assert_problem(await client.get(FEED, headers=client_headers("cases:read")), 403)


@pytest.mark.parametrize(
    "cursor",
    [
        "nope",
        "W10",
        encode_cursor("completion-changes", -1),
        encode_cursor("completion-changes", True),  # type: ignore[arg-type]
        encode_cursor("people-changes", 3),
        "x" * 400,
    ],
)
async def test_a_malformed_cursor_is_a_400_problem(client, caller, cursor):
    trainer = caller("trainer")
    problem = assert_problem(
        await client.get(FEED, params={"cursor": cursor}, headers=trainer.headers), 400
    )
    assert problem["type"].endswith("/invalid-cursor")


async def test_no_gaps_and_no_repeats_while_completions_are_recorded(
    app, client, caller, directory
):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    people = [await directory.hire(trainer.org_id) for _ in range(4)]
    writing = True

    async def write() -> list[str]:
        nonlocal writing
        try:
            made = await asyncio.gather(
                *(
                    _record(client, trainer.headers, person, course, f"2025-11-{day:02d}T10:00:00Z")
                    for person in people
                    for day in range(1, 4)
                )
            )
            assert {response.status_code for response in made} == {201}
            return [response.json()["id"] for response in made]
        finally:
            writing = False

    async def read() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while writing:
            page = await _page(client, trainer.headers, cursor)
            items += page["items"]
            cursor = page["next_cursor"]
            await asyncio.sleep(0)
        rest, _ = await _sync(client, trainer.headers, cursor)
        return items + rest

    made, read_items = await asyncio.gather(write(), read())
    assert sorted(_changes(read_items)) == sorted((c, "created") for c in made)
    async with app.state.sessionmaker() as session:
        numbered = dict(
            (
                await session.execute(
                    select(CompletionChange.completion_id, CompletionChange.seq).where(
                        CompletionChange.org_id == trainer.org_id
                    )
                )
            ).all()
        )
    order = [numbered[uuid.UUID(item["completion_id"])] for item in read_items]
    assert order == sorted(order)


async def test_a_transaction_that_commits_later_is_never_skipped(app, client, caller, directory):
    """A writes first and commits last: its change is numbered at commit, after B's."""
    maker = app.state.sessionmaker
    async with maker() as probe:
        if probe.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite runs one writer at a time: A's flush would hold B back")
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    person = await directory.hire(trainer.org_id)
    async with maker() as first:
        late = Completion(
            id=uuid.uuid4(),
            org_id=trainer.org_id,
            person_id=uuid.UUID(person["person_id"]),
            course_id=uuid.UUID(course["id"]),
            completed_at=app.state.clock.now(),
            source=CompletionSource.MANUAL,
            recorded_by="test",
        )
        first.add(late)
        await first.flush()
        early = await _record(client, trainer.headers, person, course, "2025-12-01T10:00:00Z")
        assert early.status_code == 201, early.text
        seen, cursor = await _sync(client, trainer.headers)
        assert _changes(seen) == [(early.json()["id"], "created")]
        await first.commit()
    later, _ = await _sync(client, trainer.headers, cursor)
    assert _changes(later) == [(str(late.id), "created")]
