"""HR sync in the cases service: the change feed (commit order, resumable, no repeats, only
cases the caller may see, no content), external references on cases (unique, idempotent,
filterable), `updated_since` on the case list, and what a deprovisioned person or a new
manager changes on open cases."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, cloud_event, problem
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.models import AuditEntry, Case, CaseAssignment, CaseStatus

FEED = "/cases/v1/changes"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def _feed(org: Org, who: str, cursor: str | None = None, **params: Any) -> dict[str, Any]:
    query = {**params, **({"cursor": cursor} if cursor else {})}
    response = await org.client.get(FEED, params=query, headers=org.headers(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _sync(org: Org, who: str, cursor: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Read the feed to its end, a page of 2 at a time, as a sync client does."""
    items: list[dict[str, Any]] = []
    while True:
        page = await _feed(org, who, cursor, limit=2)
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor


async def _assign(org: Org, case_id: uuid.UUID, person: str, role: str) -> httpx.Response:
    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/assignments",
        json={"person_id": str(org.people[person]), "role": role},
        headers=org.headers("handler"),
    )
    assert response.status_code == 201, response.text
    return response


async def test_the_feed_gives_every_change_once_in_commit_order_and_resumes(org: Org) -> None:
    opened = [(await org.report())[1] for _ in range(3)]
    items, cursor = await _sync(org, "handler")
    assert [item["case_id"] for item in items] == [str(case_id) for case_id in opened]
    assert {item["change"] for item in items} == {"created"}
    assert all(item["changed_at"] is None for item in items)  # no reporter timing
    assert "What happened" not in str(items)  # metadata only, never the report

    again, same_cursor = await _sync(org, "handler", cursor)
    assert again == [] and same_cursor == cursor

    await _assign(org, opened[1], "investigator", "investigator")
    fourth = (await org.report())[1]
    later, _ = await _sync(org, "handler", cursor)
    assert [(item["case_id"], item["change"]) for item in later] == [
        (str(opened[1]), "updated"),
        (str(fourth), "created"),
    ]
    assert later[0]["changed_at"] is not None


async def test_cases_hidden_from_the_caller_never_appear(org: Org) -> None:
    # `manager` is above `involved`: a case about `involved` is hidden from them.
    hidden = (await org.report(involved=["involved"]))[1]
    visible = (await org.report(involved=["excluded"], excluded=[]))[1]
    seen_by_manager, _ = await _sync(org, "manager")
    assert str(hidden) not in {item["case_id"] for item in seen_by_manager}
    assert str(visible) in {item["case_id"] for item in seen_by_manager}
    seen_by_investigator, _ = await _sync(org, "investigator")
    assert seen_by_investigator == []  # assigned nothing, sees nothing
    staff = await org.client.get(FEED, headers=org.headers("involved", ["staff"]))
    problem(staff, 403, "forbidden")


async def test_cursors_are_opaque_and_checked(org: Org) -> None:
    await org.report()
    first = await _feed(org, "handler")
    by_since = await org.client.get(
        FEED, params={"since": first["next_cursor"]}, headers=org.headers("handler")
    )
    assert by_since.status_code == 200 and by_since.json()["items"] == []
    for bad in ("nope", "WyJjYXNlLWNoYW5nZXMiLCAtMV0", "W10"):
        response = await org.client.get(
            FEED, params={"cursor": bad}, headers=org.headers("handler")
        )
        problem(response, 400, "invalid-cursor")


async def test_external_refs_are_unique_idempotent_filterable_and_in_the_feed(org: Org) -> None:
    first = (await org.report())[1]
    second = (await org.report())[1]
    handler = org.headers("handler")
    url = f"/cases/v1/cases/{first}/external-refs"
    _, cursor = await _sync(org, "handler")

    response = await org.client.put(
        url, json={"system": "workday", "id": "E-1042"}, headers=handler
    )
    assert response.status_code == 200 and response.json() == {"system": "workday", "id": "E-1042"}
    again = await org.client.put(url, json={"system": "workday", "id": "E-1042"}, headers=handler)
    assert again.status_code == 200
    taken = await org.client.put(
        f"/cases/v1/cases/{second}/external-refs",
        json={"system": "workday", "id": "E-1042"},
        headers=handler,
    )
    problem(taken, 409, "conflict")

    found = await org.client.get(
        "/cases/v1/cases", params={"external_ref": "workday:E-1042"}, headers=handler
    )
    assert [case["id"] for case in found.json()["items"]] == [str(first)]
    none = await org.client.get(
        "/cases/v1/cases", params={"external_ref": "workday:E-9"}, headers=handler
    )
    assert none.json()["items"] == []
    bad = await org.client.get("/cases/v1/cases", params={"external_ref": "E-9"}, headers=handler)
    problem(bad, 400, "bad-request")

    changed, _ = await _sync(org, "handler", cursor)
    assert [(item["case_id"], item["external_refs"]) for item in changed] == [
        (str(first), [{"system": "workday", "id": "E-1042"}])
    ]  # once: the repeated PUT changed nothing

    forget = {"system": "workday"}
    assert (await org.client.delete(url, params=forget, headers=handler)).status_code == 204
    problem(await org.client.delete(url, params=forget, headers=handler), 404, "not-found")
    investigator = org.headers("investigator")
    hidden = await org.client.put(
        url, json={"system": "workday", "id": "E-1"}, headers=investigator
    )
    problem(hidden, 404, "not-found")


async def test_updated_since_is_honoured_or_refused(org: Org) -> None:
    case_id = (await org.report())[1]
    handler = org.headers("handler")
    past = await org.client.get(
        "/cases/v1/cases", params={"updated_since": "2000-01-01T00:00:00Z"}, headers=handler
    )
    assert str(case_id) in {case["id"] for case in past.json()["items"]}
    future = await org.client.get(
        "/cases/v1/cases", params={"updated_since": "2999-01-01T00:00:00Z"}, headers=handler
    )
    assert future.status_code == 200 and future.json()["items"] == []
    naive = await org.client.get(
        "/cases/v1/cases", params={"updated_since": "2026-01-01T00:00:00"}, headers=handler
    )
    problem(naive, 400, "bad-request")
    garbage = await org.client.get(
        "/cases/v1/cases", params={"updated_since": "yesterday"}, headers=handler
    )
    assert garbage.status_code == 422


async def test_a_deactivated_person_leaves_open_cases_and_the_audit_keeps_their_part(
    org: Org, app: FastAPI
) -> None:
    open_case = (await org.report())[1]
    closed_case = (await org.report())[1]
    await _assign(org, open_case, "investigator", "investigator")
    await _assign(org, closed_case, "investigator", "investigator")
    async with app.state.sessionmaker() as session:
        finished = await session.get_one(Case, closed_case)
        finished.status = CaseStatus.CLOSED
        await session.commit()
    _, cursor = await _sync(org, "handler")

    await org.send(
        cloud_event(
            "upstander.person.deactivated",
            {"person_id": str(org.investigator), "org_id": str(org.id), "active": False},
            org_id=org.id,
        )
    )
    async with app.state.sessionmaker() as session:
        left = await session.scalars(
            select(CaseAssignment.case_id).where(CaseAssignment.person_id == org.investigator)
        )
        assert list(left) == [closed_case]
        released = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "assignment.released")
            )
        ).all()
    assert [(entry.case_id, entry.detail["person_id"]) for entry in released] == [
        (open_case, str(org.investigator))
    ]
    assert released[0].actor_kind == "system"
    changed, _ = await _sync(org, "handler", cursor)
    assert [item["case_id"] for item in changed] == [str(open_case)]


async def test_a_new_manager_of_someone_involved_loses_sight_of_the_case(org: Org) -> None:
    case_id = (await org.report(involved=["investigator"], excluded=[]))[1]
    url = f"/cases/v1/cases/{case_id}"
    assert (await org.client.get(url, headers=org.headers("handler"))).status_code == 200
    assert str(case_id) in {item["case_id"] for item in (await _sync(org, "handler"))[0]}

    # The directory now says `investigator` reports to `handler`.
    await org.person("investigator", ["investigator"], "handler")
    assert (await org.client.get(url, headers=org.headers("handler"))).status_code == 404
    assert str(case_id) not in {item["case_id"] for item in (await _sync(org, "handler"))[0]}
    assert (await org.client.get(url, headers=org.headers("deputy"))).status_code == 200
