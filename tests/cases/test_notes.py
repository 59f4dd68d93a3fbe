"""Investigation notes: written, listed oldest first, corrected only by new versions (the old
text stays readable), hidden from whoever may not see the case, validated, audited, and gone
with the case's data key."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cases_world import Org, problem
from fastapi import FastAPI
from investigation_support import (
    audit_entries,
    database_bytes,
    hidden_callers,
    ids_only,
    marker,
    shred,
    staff_headers,
)
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError

from upstander.cases.models import Case, CaseNote, CaseNoteVersion
from upstander.cases.notes.service import notes_for_case
from upstander.kit.clock import FrozenClock
from upstander.kit.scopes import scopes_for_roles


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


@pytest.fixture
async def case_id(org: Org) -> uuid.UUID:
    _, opened = await org.report(involved=["involved"], excluded=["excluded"])
    return opened


def notes_url(case_id: uuid.UUID) -> str:
    return f"/cases/v1/cases/{case_id}/notes"


async def write(org: Org, case_id: uuid.UUID, body: str, who: str = "handler") -> dict[str, Any]:
    response = await org.client.post(
        notes_url(case_id), json={"body": body}, headers=org.headers(who)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count_notes(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CaseNote)) or 0)


# ----------------------------------------------------------------------------- round trips


async def test_a_note_is_written_and_read_back_with_its_author(
    org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    body = marker("note")

    created = await write(org, case_id, body)
    read = await org.client.get(
        f"{notes_url(case_id)}/{created['id']}", headers=org.headers("handler")
    )

    assert read.status_code == 200, read.text
    note = read.json()
    assert note["body"] == body and note["version"] == 1 and note["case_id"] == str(case_id)
    assert note["author"] == {"kind": "person", "id": str(org.handler)}
    assert (
        note["created_at"] == note["updated_at"] == clock.now().isoformat().replace("+00:00", "Z")
    )
    assert [(v["number"], v["body"], v["reason"]) for v in note["versions"]] == [(1, body, None)]
    assert created == note


async def test_notes_are_listed_oldest_first_one_page_at_a_time(
    org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    bodies = [marker(f"note{i}") for i in range(3)]
    for body in bodies:
        await write(org, case_id, body)
        clock.advance(timedelta(minutes=1))

    first = await org.client.get(
        notes_url(case_id), params={"limit": 2}, headers=org.headers("handler")
    )
    rest = await org.client.get(
        notes_url(case_id),
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=org.headers("handler"),
    )

    assert [n["body"] for n in first.json()["items"]] == bodies[:2]
    assert [n["body"] for n in rest.json()["items"]] == bodies[2:]
    assert rest.json()["next_cursor"] is None


async def test_a_correction_is_a_new_version_and_the_old_text_stays_readable(
    org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    original, corrected = marker("original"), marker("corrected")
    note = await write(org, case_id, original)
    clock.advance(timedelta(hours=1))

    correction = await org.client.post(
        f"{notes_url(case_id)}/{note['id']}/versions",
        json={"body": corrected, "reason": "Wrong shift."},
        headers=org.headers("reviewer"),
    )
    listed = await org.client.get(notes_url(case_id), headers=org.headers("handler"))
    read = await org.client.get(
        f"{notes_url(case_id)}/{note['id']}", headers=org.headers("handler")
    )

    assert correction.status_code == 201, correction.text
    assert correction.json() == read.json()
    current = read.json()
    assert current["body"] == corrected and current["version"] == 2
    assert current["author"] == {"kind": "person", "id": str(org.handler)}  # who wrote the note
    assert current["updated_at"] != current["created_at"]
    assert [
        (v["number"], v["body"], v["reason"], v["author"]["id"]) for v in current["versions"]
    ] == [
        (1, original, None, str(org.handler)),
        (2, corrected, "Wrong shift.", str(org.reviewer)),
    ]
    [item] = listed.json()["items"]
    assert item["body"] == corrected and "versions" not in item


async def test_an_api_client_is_recorded_as_the_author_by_its_client_id(
    org: Org, case_id: uuid.UUID
) -> None:
    client = org.mint(
        org=org.id,
        roles=["case_manager"],
        sub="client-hr-sync",
        typ="client",
        scope=" ".join(sorted(scopes_for_roles(["case_manager"]))),
        owner=str(org.handler),  # a client acts within what the person who registered it sees
    )

    created = await org.client.post(
        notes_url(case_id),
        json={"body": "Synced from HR."},
        headers={"Authorization": f"Bearer {client}"},
    )

    assert created.status_code == 201, created.text
    assert created.json()["author"] == {"kind": "client", "id": "client-hr-sync"}


async def test_notes_for_case_returns_every_note_with_its_versions_loaded(
    app: FastAPI, org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    first = await write(org, case_id, "first")
    clock.advance(timedelta(minutes=1))
    await write(org, case_id, "second")
    await org.client.post(
        f"{notes_url(case_id)}/{first['id']}/versions",
        json={"body": "first, corrected"},
        headers=org.headers("handler"),
    )

    async with app.state.sessionmaker() as session:
        case = await session.get_one(Case, case_id)
        notes = await notes_for_case(session, case)
    async with app.state.sessionmaker() as session:
        unloaded = await session.get_one(CaseNote, notes[1].id)

    assert [[v.body for v in n.versions] for n in notes] == [
        ["first", "first, corrected"],
        ["second"],
    ]
    with pytest.raises(InvalidRequestError):  # lazy="raise": never a hidden lazy load
        _ = unloaded.versions  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- who may see them


async def test_people_the_case_is_hidden_from_get_404_on_notes(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    note = await write(org, case_id, marker("secret"))
    callers = await hidden_callers(org, case_id)

    for who, headers in callers.items():
        responses = [
            await org.client.get(notes_url(case_id), headers=headers),
            await org.client.post(notes_url(case_id), json={"body": "x"}, headers=headers),
            await org.client.get(f"{notes_url(case_id)}/{note['id']}", headers=headers),
            await org.client.post(
                f"{notes_url(case_id)}/{note['id']}/versions", json={"body": "x"}, headers=headers
            ),
        ]
        for response in responses:
            body = problem(response, 404, "not-found")
            assert "secret" not in response.text, who
            assert body["status"] == 404, who
    assert await count_notes(app) == 1


async def test_staff_without_a_handler_role_are_refused(org: Org, case_id: uuid.UUID) -> None:
    headers = staff_headers(org)

    listing = await org.client.get(notes_url(case_id), headers=headers)
    writing = await org.client.post(notes_url(case_id), json={"body": "x"}, headers=headers)

    # Someone who handles no case gets the 404 of a hidden case, the same for every case id.
    problem(listing, 404, "not-found")
    problem(writing, 404, "not-found")


async def test_another_cases_note_is_404(org: Org, case_id: uuid.UUID) -> None:
    note = await write(org, case_id, "on the first case")
    _, other_case = await org.report()

    response = await org.client.get(
        f"{notes_url(other_case)}/{note['id']}", headers=org.headers("handler")
    )
    correction = await org.client.post(
        f"{notes_url(other_case)}/{note['id']}/versions",
        json={"body": "x"},
        headers=org.headers("handler"),
    )

    problem(response, 404, "not-found")
    problem(correction, 404, "not-found")


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": ""}, "body.body"),
        ({"body": "   "}, "body.body"),
        ({"body": "x" * 20_001}, "body.body"),
        ({}, "body.body"),
        ({"body": "ok", "author": "someone"}, "body.author"),
        ({"body": 42}, "body.body"),
    ],
    ids=["empty", "blank", "too_long", "missing", "unknown_field", "not_text"],
)
async def test_a_bad_note_is_a_422_problem(
    app: FastAPI, org: Org, case_id: uuid.UUID, payload: dict[str, Any], field: str
) -> None:
    response = await org.client.post(
        notes_url(case_id), json=payload, headers=org.headers("handler")
    )

    body = problem(response, 422, "validation-error")
    assert field in [e["field"] for e in body["errors"]]
    assert await count_notes(app) == 0


async def test_a_bad_correction_is_a_422_problem_and_adds_no_version(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    note = await write(org, case_id, "kept")
    url = f"{notes_url(case_id)}/{note['id']}/versions"

    for payload in (
        {"body": ""},
        {"reason": "no body"},
        {"body": "x", "reason": ""},
        {"body": "x", "edit": 1},
    ):
        problem(
            await org.client.post(url, json=payload, headers=org.headers("handler")),
            422,
            "validation-error",
        )

    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CaseNoteVersion)) == 1


async def test_a_note_of_20000_characters_is_accepted(org: Org, case_id: uuid.UUID) -> None:
    created = await write(org, case_id, "x" * 20_000)

    assert len(created["body"]) == 20_000


# ----------------------------------------------------------------------------- audit


async def test_writing_correcting_listing_and_reading_notes_is_audited_by_id(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    body = marker("audited")
    note = await write(org, case_id, body)
    url = f"{notes_url(case_id)}/{note['id']}"
    await org.client.post(
        f"{url}/versions", json={"body": body + "!"}, headers=org.headers("handler")
    )
    await org.client.get(notes_url(case_id), headers=org.headers("handler"))
    await org.client.get(url, headers=org.headers("handler"))

    entries = await audit_entries(app, case_id, "note.")

    assert [(e.action, e.detail) for e in entries] == [
        ("note.create", {"note_id": note["id"], "version": 1}),
        ("note.correct", {"note_id": note["id"], "version": 2}),
        ("note.list", {"note_ids": [note["id"]]}),
        ("note.read", {"note_id": note["id"], "version": 2}),
    ]
    assert all(e.actor_id == str(org.handler) and ids_only(e.detail) for e in entries)


async def test_a_hidden_callers_attempt_is_audited_as_a_refusal(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    headers = org.headers("involved", ["case_manager"])

    await org.client.post(notes_url(case_id), json={"body": "x"}, headers=headers)

    [refused] = await audit_entries(app, case_id, "case.refused")
    assert refused.actor_id == str(org.involved)
    assert refused.detail["status"] == 404 and refused.detail["method"] == "POST"


# ----------------------------------------------------------------------------- shredding


async def test_notes_are_sealed_at_rest_and_gone_once_the_case_is_shredded(
    app: FastAPI, org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    if not app.state.settings.database_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file")
    original, corrected, reason = marker("note-body"), marker("note-fix"), marker("note-why")
    note = await write(org, case_id, original)
    await org.client.post(
        f"{notes_url(case_id)}/{note['id']}/versions",
        json={"body": corrected, "reason": reason},
        headers=org.headers("handler"),
    )
    case = await org.client.get(f"/cases/v1/cases/{case_id}", headers=org.headers("handler"))
    number = case.json()["number"]

    await shred(app, clock, case_id)

    problem(await org.client.get(notes_url(case_id), headers=org.admin()), 404, "not-found")
    problem(
        await org.client.get(f"{notes_url(case_id)}/{note['id']}", headers=org.headers("reviewer")),
        404,
        "not-found",
    )
    async with app.state.sessionmaker() as session:
        versions = (await session.scalars(select(CaseNoteVersion))).all()
    assert all(v.body is None and v.reason is None for v in versions)
    on_disk = database_bytes(app)
    assert number.encode() in on_disk  # the scan reads the right files
    for text in (original, corrected, reason):
        assert text.encode() not in on_disk
