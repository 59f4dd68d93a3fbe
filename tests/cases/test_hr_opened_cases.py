"""`POST /cases/v1/cases`: an HR system opens a case it received by phone or email, handled
exactly like a report from intake (deadlines, restrictions, routing, `case.opened`), idempotent
on its external reference and on `Idempotency-Key`."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from cases_world import Org, auth, outbox, problem
from fastapi import FastAPI

OPEN = "/cases/v1/cases"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def hr_client(org: Org, owner: str = "handler", scope: str = "cases:read cases:write") -> Any:
    """An HR system's client_credentials token, registered by `owner`."""
    token = org.mint(
        org=org.id,
        roles=[],
        sub="cl_workday",
        typ="client",
        scope=scope,
        owner=str(org.people[owner]),
    )
    return auth(token)


def body(org: Org, ref: str = "HR-1", **extra: Any) -> dict[str, Any]:
    return {
        "external_ref": {"system": "workday", "id": ref},
        "mode": "confidential",
        "categories": ["sexual_harassment"],
        "received_at": "2026-11-24T09:10:00Z",
        "description": "Reported by phone to HR",
        "people_involved": [{"person_id": str(org.involved), "role": "subject"}],
        "witnesses": [{"name": "A colleague"}],
        "excluded_person_ids": [str(org.excluded)],
        "reporter": {"name": "Caller", "contact": "+1 555 0100"},
        **extra,
    }


async def test_an_hr_system_opens_a_case_like_a_report_from_intake(org: Org, app: FastAPI) -> None:
    headers = hr_client(org)
    response = await org.client.post(OPEN, json=body(org), headers=headers)
    assert response.status_code == 201, response.text
    opened = response.json()
    case_id = opened["id"]
    assert response.headers["location"] == f"/cases/v1/cases/{case_id}"
    assert opened["external_refs"] == [{"system": "workday", "id": "HR-1"}]
    case = opened["case"]
    assert case["status"] == "new" and case["reporter_mode"] == "confidential"
    assert case["routed_to"] == "case_managers"
    # Deadlines from when HR received it (kept to the hour for a confidential reporter).
    received = datetime.fromisoformat(case["received_at"])
    assert received == datetime.fromisoformat("2026-11-24T09:00:00+00:00")
    assert datetime.fromisoformat(case["acknowledge_by"]) == received + timedelta(days=7)

    # Sealed like a report, marked as coming from an HR system; the reporter's name is not
    # part of the report.
    report = await org.client.get(f"{OPEN}/{case_id}/report", headers=org.headers("handler"))
    assert report.status_code == 200, report.text
    assert report.json()["source"] == "hr_system"
    assert report.json()["description"] == "Reported by phone to HR"
    assert "Caller" not in report.text

    # The people involved, excluded or above them never see it.
    for who in ("involved", "excluded", "manager"):
        hidden = await org.client.get(f"{OPEN}/{case_id}", headers=org.headers(who))
        problem(hidden, 404, "not-found")
    deputy = await org.client.get(f"{OPEN}/{case_id}", headers=org.headers("deputy"))
    assert deputy.status_code == 200  # a case manager beside the chain, not above it

    # Announced as every case is (notify sends the notices): ids and restrictions only.
    [event] = [
        e for e in await outbox(app, "upstander.case.opened") if e["data"]["case_id"] == case_id
    ]
    assert set(event["data"]["restricted_person_ids"]) >= {
        str(org.involved),
        str(org.excluded),
        str(org.manager),
    }
    assert "Reported by phone" not in str(event)

    # Found again by its reference.
    found = await org.client.get(
        OPEN, params={"external_ref": "workday:HR-1"}, headers=org.headers("handler")
    )
    assert [item["id"] for item in found.json()["items"]] == [case_id]


async def test_the_same_reference_again_returns_the_case_already_opened(
    org: Org, app: FastAPI
) -> None:
    headers = hr_client(org)
    first = await org.client.post(OPEN, json=body(org, "HR-2"), headers=headers)
    assert first.status_code == 201
    again = await org.client.post(
        OPEN, json=body(org, "HR-2", description="Another wording"), headers=headers
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    opened = [e for e in await outbox(app, "upstander.case.opened")]
    assert [e["data"]["case_id"] for e in opened].count(first.json()["id"]) == 1

    keyed = {**headers, "Idempotency-Key": "sync-run-7"}
    one = await org.client.post(OPEN, json=body(org, "HR-3"), headers=keyed)
    two = await org.client.post(OPEN, json=body(org, "HR-3"), headers=keyed)
    assert one.status_code == two.status_code == 201
    assert one.json() == two.json()
    listing = await org.client.get(OPEN, headers=org.headers("reviewer"))
    assert len(listing.json()["items"]) == 2


async def test_leadership_involved_goes_to_reviewers_and_is_hidden_from_the_caller(
    org: Org,
) -> None:
    request = body(org, "HR-4", people_involved=[{"person_id": str(org.candidate)}])
    response = await org.client.post(OPEN, json=request, headers=hr_client(org))
    assert response.status_code == 201, response.text
    assert response.json()["case"] is None  # a case manager's client: reviewers only
    case_id = response.json()["id"]
    seen = await org.client.get(f"{OPEN}/{case_id}", headers=org.headers("reviewer"))
    assert seen.json()["routed_to"] == "reviewers"
    repeat = await org.client.post(OPEN, json=request, headers=hr_client(org))
    assert repeat.status_code == 200 and repeat.json()["case"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mode": "identified"}, "body"),
        ({"mode": "anonymous"}, "body"),
        ({"mode": "identified", "reporter": {"person_id": "nope"}}, "body.reporter.person_id"),
        ({"categories": []}, "body.categories"),
        ({"description": ""}, "body.description"),
        ({"external_ref": {"system": "Work Day", "id": "1"}}, "body.external_ref.system"),
        ({"received_at": "2026-11-24T09:10:00"}, "body"),
        ({"surprise": True}, "body.surprise"),
        ({"people_involved": [{"role": "subject"}]}, "body.people_involved.0"),
    ],
)
async def test_invalid_bodies_are_422_problems(
    org: Org, change: dict[str, Any], field: str
) -> None:
    response = await org.client.post(OPEN, json={**body(org), **change}, headers=hr_client(org))
    found = problem(response, 422, "validation-error")
    assert any(error["field"].startswith(field) for error in found["errors"]), found


async def test_received_in_the_future_is_refused_and_scope_is_required(org: Org) -> None:
    future = body(org, "HR-5", received_at="2999-01-01T00:00:00Z")
    problem(
        await org.client.post(OPEN, json=future, headers=hr_client(org)), 422, "validation-error"
    )
    read_only = hr_client(org, scope="cases:read")
    problem(
        await org.client.post(OPEN, json=body(org, "HR-6"), headers=read_only), 403, "forbidden"
    )
    staff = org.headers("involved", ["staff"])
    problem(await org.client.post(OPEN, json=body(org, "HR-7"), headers=staff), 403, "forbidden")
    listing = await org.client.get(OPEN, headers=org.headers("reviewer"))
    assert listing.json()["items"] == []


async def test_an_identified_report_names_its_reporter(org: Org) -> None:
    request = body(
        org,
        "HR-8",
        mode="identified",
        reporter={"person_id": str(org.investigator)},
        excluded_person_ids=[],
    )
    response = await org.client.post(OPEN, json=request, headers=hr_client(org))
    assert response.status_code == 201, response.text
    assert response.json()["case"]["reporter_person_id"] == str(org.investigator)
    assert uuid.UUID(response.json()["id"])


async def test_the_feed_shows_an_hr_opened_case_once_with_its_reference(org: Org) -> None:
    opened = await org.client.post(OPEN, json=body(org, "HR-9"), headers=hr_client(org))
    assert opened.status_code == 201
    again = await org.client.post(OPEN, json=body(org, "HR-9"), headers=hr_client(org))
    assert again.status_code == 200
    feed = await org.client.get("/cases/v1/changes", headers=hr_client(org))
    assert [(i["case_id"], i["change"], i["external_refs"]) for i in feed.json()["items"]] == [
        (opened.json()["id"], "created", [{"system": "workday", "id": "HR-9"}])
    ]
