"""A case's timeline: every kind of record in one list ordered by (at, kind, id), paged by a
keyset cursor across kinds, without sealed text, behind the case's door, and audited."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from case_file_support import MESSAGE_TEXT, NOTE_TEXT, add_answered_checkin, build_case_file
from cases_world import Org, problem
from fastapi import FastAPI
from investigation_support import audit_entries, hidden_callers, staff_headers

from upstander.kit.clock import FrozenClock


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def timeline_url(case_id: uuid.UUID) -> str:
    return f"/cases/v1/cases/{case_id}/timeline"


async def read_all(
    org: Org, case_id: uuid.UUID, limit: int, who: str = "handler"
) -> tuple[list[dict[str, Any]], int]:
    """Every item, page by page; and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await org.client.get(
            timeline_url(case_id), params=params, headers=org.headers(who)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def order_key(item: dict[str, Any]) -> tuple[datetime, str, uuid.UUID]:
    return (datetime.fromisoformat(item["at"]), item["kind"], uuid.UUID(item["id"]))


async def test_the_timeline_lists_every_kind_of_record_in_the_order_it_happened(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    made = await build_case_file(app, org, clock)

    response = await org.client.get(
        timeline_url(made.case_id), params={"limit": 200}, headers=org.headers("handler")
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert [item["kind"] for item in items] == made.kinds
    assert items == sorted(items, key=order_key)
    by_kind: dict[str, dict[str, Any]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], item)  # the first of each kind
    assert by_kind["case_opened"]["id"] == str(made.case_id)
    assert by_kind["transition"]["summary"] == {
        "from": "new",
        "to": "triage",
        "referred_to": None,
        "outcome": None,
    }
    assert by_kind["transition"]["actor"] == {"kind": "person", "id": str(org.handler)}
    directions = [i["summary"]["direction"] for i in items if i["kind"] == "message"]
    assert directions == ["system", "to_reporter", "from_reporter"]
    assert by_kind["finding"]["summary"] == {
        "category": "sexual_harassment",
        "finding": "substantiated",
    }
    assert by_kind["finding"]["actor"] == {"kind": "person", "id": str(org.investigator)}
    assert by_kind["assignment"]["summary"] == {
        "person_id": str(org.investigator),
        "role": "investigator",
    }
    assert by_kind["note_version"]["summary"]["version"] == 2
    assert by_kind["custody"]["summary"] == {
        "evidence_id": made.evidence_id,
        "action": "downloaded",
    }
    assert by_kind["checkin_answered"]["summary"] == {
        "retaliation": False,
        "follow_up_opened": False,
    }
    # Short facts only: no message, note or report text.
    for text in (MESSAGE_TEXT, NOTE_TEXT, "What happened", "Note from him"):
        assert text not in response.text


async def test_pages_of_any_size_give_the_same_timeline_without_gaps_or_repeats(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    made = await build_case_file(app, org, clock)
    whole, _ = await read_all(org, made.case_id, limit=200)

    for limit in (1, 2, 3, 7):
        paged, pages = await read_all(org, made.case_id, limit=limit)
        assert paged == whole, limit
        assert pages == -(-len(whole) // limit)  # no empty last page


async def test_records_of_one_instant_are_ordered_by_kind_then_id_across_pages(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    _, case_id = await org.report()
    url, handler = f"/cases/v1/cases/{case_id}", org.headers("handler")
    # The clock stands still: every record below is made at one instant.
    # The clock stands still: every record below shares one instant with the case's opening.
    for n in range(3):
        note = await org.client.post(f"{url}/notes", json={"body": f"n{n}"}, headers=handler)
        assert note.status_code == 201, note.text
        message = await org.client.post(f"{url}/messages", json={"body": f"m{n}"}, headers=handler)
        assert message.status_code == 201, message.text
    await add_answered_checkin(app, org, case_id, clock)

    items, pages = await read_all(org, case_id, limit=2)

    assert pages >= 5
    # The case's opening is stamped with the hour of an anonymous report; what follows is
    # one instant.
    assert items[0]["kind"] == "case_opened"
    instant = [item for item in items if item["at"] == items[1]["at"]]
    kinds = [item["kind"] for item in instant]
    assert kinds == ["checkin", *["message"] * 3, *["note"] * 3]
    for kind in ("message", "note"):
        ids = [item["id"] for item in instant if item["kind"] == kind]
        assert ids == sorted(ids, key=uuid.UUID)
    assert items[-1]["kind"] == "checkin_answered"
    assert len({(item["kind"], item["id"]) for item in items}) == len(items)


async def test_reading_the_timeline_is_audited_with_ids_only(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    _, case_id = await org.report()

    response = await org.client.get(timeline_url(case_id), headers=org.headers("handler"))

    assert response.status_code == 200
    [entry] = await audit_entries(app, case_id, "timeline.")
    assert (entry.action, entry.actor_id) == ("timeline.read", str(org.handler))
    assert entry.detail == {"items": len(response.json()["items"])}


async def test_a_cursor_the_platform_did_not_make_is_400(org: Org) -> None:
    _, case_id = await org.report()

    def crafted(values: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")

    for cursor in (
        "nonsense",
        "W10",
        "WyIyMDI2LTExLTI0VDA5OjMwOjAwIiwgIm5vdGUiLCAieCJd",
        crafted(["2026-11-24T09:30:00+00:00", "note", 123]),  # an id that is no string
        crafted(["0001-01-01T00:00:00+05:00", "note", str(uuid.uuid4())]),  # before year 1 UTC
        crafted({"at": 1, "kind": 2, "id": 3}),  # an object, not a list
        crafted(["2026-11-24T09:30:00", "note", str(uuid.uuid4())]),  # no time zone
    ):
        response = await org.client.get(
            timeline_url(case_id), params={"cursor": cursor}, headers=org.headers("handler")
        )
        problem(response, 400, "invalid-cursor")


async def test_people_kept_from_the_case_and_staff_get_404(org: Org) -> None:
    _, case_id = await org.report()
    callers = await hidden_callers(org, case_id)
    # A handler with nothing to do with the case: an investigator not assigned to it.
    callers["unassigned_investigator"] = org.headers("investigator")

    for who, headers in callers.items():
        response = await org.client.get(timeline_url(case_id), headers=headers)
        assert problem(response, 404, "not-found")["detail"] == "No such case.", who
    # Without a handler role: the 404 of a hidden case.
    problem(
        await org.client.get(timeline_url(case_id), headers=staff_headers(org)), 404, "not-found"
    )
