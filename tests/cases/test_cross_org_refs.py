"""A case names only its own organisation's people: an allegation naming a person of another
organisation is refused (422), and a report that names such people (intake could not tell
yet) opens its case without them, the drop recorded on the case's audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, problem
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.models import CaseRestriction, RoutedTo

NOT_OURS = "Not a person of this organisation."


@pytest.fixture
async def org_a(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


@pytest.fixture
async def org_b(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def allegation(*subjects: uuid.UUID) -> dict[str, Any]:
    return {
        "category": "retaliation",
        "description": "Moved my shifts after I complained",
        "subject_person_ids": [str(s) for s in subjects],
    }


async def restricted(app: FastAPI, case_id: uuid.UUID) -> set[uuid.UUID]:
    async with app.state.sessionmaker() as session:
        return set(
            await session.scalars(
                select(CaseRestriction.person_id).where(CaseRestriction.case_id == case_id)
            )
        )


async def test_an_allegation_naming_another_org_s_person_is_refused(
    app: FastAPI, org_a: Org, org_b: Org
) -> None:
    _, case_id = await org_b.report(involved=[], excluded=[])

    response = await org_b.client.post(
        f"/cases/v1/cases/{case_id}/allegations",
        json=allegation(org_b.deputy, org_a.candidate),
        headers=org_b.headers("handler"),
    )

    body = problem(response, 422, "validation-error")
    assert body["errors"] == [{"field": "body.subject_person_ids.1", "message": NOT_OURS}]
    # Nothing was recorded: no allegation, no restriction, the case still with case managers.
    assert await restricted(app, case_id) == set()
    listed = await org_b.client.get(
        f"/cases/v1/cases/{case_id}/allegations", headers=org_b.headers("handler")
    )
    assert listed.json()["items"] == []
    case = await org_b.client.get(f"/cases/v1/cases/{case_id}", headers=org_b.headers("handler"))
    assert case.json()["routed_to"] == RoutedTo.CASE_MANAGERS.value


async def test_an_allegation_naming_the_org_s_own_people_is_recorded(
    app: FastAPI, org_a: Org, org_b: Org
) -> None:
    _, case_id = await org_b.report(involved=[], excluded=[])

    response = await org_b.client.post(
        f"/cases/v1/cases/{case_id}/allegations",
        json=allegation(org_b.deputy),
        headers=org_b.headers("handler"),
    )

    assert response.status_code == 201, response.text
    assert org_b.deputy in await restricted(app, case_id)


async def test_a_report_naming_another_org_s_people_opens_its_case_without_them(
    app: FastAPI, org_a: Org, org_b: Org
) -> None:
    # org A's candidate is leadership: were the id taken, the case would go to reviewers.
    _, case_id = await org_b.report(
        involved=[],
        excluded=[],
        people_involved=[
            {"person_id": str(org_a.candidate), "role": "subject"},
            {"person_id": str(org_b.involved), "role": "subject"},
        ],
        excluded_person_ids=[str(org_a.excluded), str(org_b.excluded)],
    )

    hidden_from = await restricted(app, case_id)
    assert org_a.candidate not in hidden_from and org_a.excluded not in hidden_from
    assert {org_b.involved, org_b.excluded} <= hidden_from
    case = await org_b.client.get(f"/cases/v1/cases/{case_id}", headers=org_b.headers("handler"))
    assert case.json()["routed_to"] == RoutedTo.CASE_MANAGERS.value
    trail = await org_b.client.get(
        "/cases/v1/audit", params={"case_id": str(case_id)}, headers=org_b.admin(["auditor"])
    )
    [dropped] = [e for e in trail.json()["items"] if e["action"] == "case.foreign_people_dropped"]
    # The number only: org B's trail never holds org A's ids.
    assert dropped["detail"] == {"count": 2}
    assert dropped["actor_kind"] == "system"
    assert str(org_a.candidate) not in trail.text and str(org_a.excluded) not in trail.text
