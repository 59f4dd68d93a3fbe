"""Case files: opening one from a report (numbering, deadlines, idempotency) and reading them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.cases.service import open_case
from upstander.cases.models import Case, CaseStatus
from upstander.kit.clock import FrozenClock

PROBLEM_JSON = "application/problem+json"
RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == f"https://upstander.dev/problems/{slug}"
    return body


async def open_one(
    app: FastAPI,
    org_id: uuid.UUID,
    *,
    report_id: uuid.UUID | None = None,
    received_at: datetime = RECEIVED,
    slug: str = "demo",
    categories: list[str] | None = None,
) -> Case:
    async with app.state.sessionmaker() as session:
        case = await open_case(
            session,
            org_id=org_id,
            org_slug=slug,
            report_id=report_id or uuid.uuid4(),
            received_at=received_at,
            categories=categories or ["harassment"],
            clock=app.state.clock,
        )
        await session.commit()
        return case


async def set_status(app: FastAPI, case_id: uuid.UUID, status: CaseStatus) -> None:
    async with app.state.sessionmaker() as session:
        case = await session.get_one(Case, case_id)
        case.status = status
        await session.commit()


async def test_open_case_numbers_cases_per_org_and_year(app: FastAPI) -> None:
    demo, other = uuid.uuid4(), uuid.uuid4()

    first = await open_one(app, demo)
    second = await open_one(app, demo)
    elsewhere = await open_one(app, other, slug="acme")
    next_year = await open_one(app, demo, received_at=datetime(2027, 1, 2, tzinfo=UTC))

    assert first.number == "DEMO-2026-0001"
    assert second.number == "DEMO-2026-0002"
    assert elsewhere.number == "ACME-2026-0001"
    assert next_year.number == "DEMO-2027-0001"


async def test_open_case_sets_status_and_legal_deadlines(app: FastAPI) -> None:
    case = await open_one(app, uuid.uuid4(), categories=["retaliation", "harassment"])

    assert case.status == CaseStatus.NEW
    assert case.priority == "normal"
    assert case.severity is None
    assert case.categories == ["retaliation", "harassment"]
    # An anonymous report keeps the hour only; its deadlines count from it (sooner, never later).
    assert case.received_at == RECEIVED.replace(minute=0)
    assert case.acknowledge_by == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert case.feedback_by == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert case.acknowledged_at is None
    assert case.closed_at is None
    assert case.version == 1


async def test_open_case_clamps_feedback_to_month_end(app: FastAPI) -> None:
    case = await open_one(app, uuid.uuid4(), received_at=datetime(2026, 11, 23, tzinfo=UTC))

    assert case.acknowledge_by == datetime(2026, 11, 30, tzinfo=UTC)
    assert case.feedback_by == datetime(2027, 2, 28, tzinfo=UTC)


async def test_open_case_is_idempotent_on_report_id(app: FastAPI) -> None:
    org_id, report_id = uuid.uuid4(), uuid.uuid4()

    first = await open_one(app, org_id, report_id=report_id)
    again = await open_one(app, org_id, report_id=report_id)
    following = await open_one(app, org_id)

    assert again.id == first.id
    assert again.number == "DEMO-2026-0001"
    assert following.number == "DEMO-2026-0002"  # the repeat took no number


async def test_concurrent_openings_get_distinct_numbers(app: FastAPI) -> None:
    org_id = uuid.uuid4()
    repeated_report = uuid.uuid4()

    cases = await asyncio.gather(
        *(open_one(app, org_id) for _ in range(6)),
        open_one(app, org_id, report_id=repeated_report),
        open_one(app, org_id, report_id=repeated_report),
    )

    numbers = sorted({case.number for case in cases})
    assert numbers == [f"DEMO-2026-{n:04d}" for n in range(1, 8)]
    assert cases[-1].id == cases[-2].id


async def test_open_case_refuses_a_naive_received_at(app: FastAPI) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await open_one(app, uuid.uuid4(), received_at=datetime(2026, 11, 24))


async def test_handler_gets_a_case_with_its_etag(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    org_id = uuid.uuid4()
    case = await open_one(app, org_id)

    response = await client.get(
        f"/cases/v1/cases/{case.id}", headers=auth(mint(org=org_id, roles=["case_manager"]))
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body["id"] == str(case.id)
    assert body["number"] == "DEMO-2026-0001"
    assert body["status"] == "new"
    assert body["priority"] == "normal"
    assert body["acknowledge_by"] == "2026-12-01T09:00:00Z"  # from the hour received
    assert body["feedback_by"] == "2027-03-01T09:00:00Z"


async def test_the_etag_follows_the_version(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    org_id = uuid.uuid4()
    case = await open_one(app, org_id)
    await set_status(app, case.id, CaseStatus.TRIAGE)

    response = await client.get(
        f"/cases/v1/cases/{case.id}", headers=auth(mint(org=org_id, roles=["case_manager"]))
    )

    assert response.headers["etag"] == '"2"'
    assert response.json()["status"] == "triage"


async def test_list_pages_newest_first(
    app: FastAPI, client: httpx.AsyncClient, mint: Any, clock: FrozenClock
) -> None:
    org_id = uuid.uuid4()
    numbers = []
    for _ in range(5):
        numbers.append((await open_one(app, org_id)).number)
        clock.advance(timedelta(minutes=1))
    await open_one(app, uuid.uuid4())  # another org's case never shows up
    headers = auth(mint(org=org_id, roles=["case_manager"]))

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/cases/v1/cases", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["number"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(numbers))
    assert pages == 3


async def test_list_filters_by_status(app: FastAPI, client: httpx.AsyncClient, mint: Any) -> None:
    org_id = uuid.uuid4()
    first = await open_one(app, org_id)
    await open_one(app, org_id)
    await set_status(app, first.id, CaseStatus.INVESTIGATING)
    headers = auth(mint(org=org_id, roles=["reviewer"]))

    investigating = await client.get(
        "/cases/v1/cases", params={"status": "investigating"}, headers=headers
    )
    new = await client.get("/cases/v1/cases", params={"status": "new"}, headers=headers)

    assert [c["number"] for c in investigating.json()["items"]] == ["DEMO-2026-0001"]
    assert [c["number"] for c in new.json()["items"]] == ["DEMO-2026-0002"]


async def test_list_rejects_an_unknown_status(client: httpx.AsyncClient, mint: Any) -> None:
    response = await client.get(
        "/cases/v1/cases",
        params={"status": "lost"},
        headers=auth(mint(org=uuid.uuid4(), roles=["admin"])),
    )

    assert_problem(response, 422, "validation-error")


async def test_list_rejects_a_garbled_cursor(client: httpx.AsyncClient, mint: Any) -> None:
    response = await client.get(
        "/cases/v1/cases",
        params={"cursor": "not-a-cursor"},
        headers=auth(mint(org=uuid.uuid4(), roles=["admin"])),
    )

    assert_problem(response, 400, "invalid-cursor")


async def test_another_orgs_case_is_404(app: FastAPI, client: httpx.AsyncClient, mint: Any) -> None:
    case = await open_one(app, uuid.uuid4())
    other_org = auth(mint(org=uuid.uuid4(), roles=["admin"]))

    single = await client.get(f"/cases/v1/cases/{case.id}", headers=other_org)
    listing = await client.get("/cases/v1/cases", headers=other_org)

    assert_problem(single, 404, "not-found")
    assert listing.json() == {"items": [], "next_cursor": None}


async def test_an_unknown_case_is_404(client: httpx.AsyncClient, mint: Any) -> None:
    response = await client.get(
        f"/cases/v1/cases/{uuid.uuid4()}", headers=auth(mint(org=uuid.uuid4(), roles=["admin"]))
    )

    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("roles", [["staff"], ["trainer"], ["hr_integration"], []])
async def test_roles_that_do_not_handle_cases_get_403_on_the_list_and_404_on_a_case(
    app: FastAPI, client: httpx.AsyncClient, mint: Any, roles: list[str]
) -> None:
    org_id = uuid.uuid4()
    case = await open_one(app, org_id)
    headers = auth(mint(org=org_id, roles=roles))

    listing = await client.get("/cases/v1/cases", headers=headers)
    single = await client.get(f"/cases/v1/cases/{case.id}", headers=headers)

    assert_problem(listing, 403, "forbidden")
    # Asking for a case by id, someone who handles no case gets the 404 of a hidden case.
    assert_problem(single, 404, "not-found")


async def test_a_reporter_token_is_refused(client: httpx.AsyncClient, mint: Any) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"], typ="reporter")

    response = await client.get("/cases/v1/cases", headers=auth(token))

    assert_problem(response, 403, "forbidden")


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/cases/v1/cases")

    assert_problem(response, 401, "unauthorized")


async def test_cases_are_stored_once_per_report(app: FastAPI) -> None:
    org_id, report_id = uuid.uuid4(), uuid.uuid4()
    await open_one(app, org_id, report_id=report_id)
    await open_one(app, org_id, report_id=report_id)

    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(Case).where(Case.org_id == org_id))).all()
    assert len(rows) == 1
