"""`upstander.case.updated`: once per case and committed transaction that changed it (record,
assignments, external references), ids, status and version only; not when it opens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cases_world import Org, outbox
from fastapi import FastAPI

from upstander.kit.contracts import CaseUpdated

UPDATED = "upstander.case.updated"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def test_a_changed_case_is_announced_once_per_transaction_with_ids_only(
    org: Org, app: FastAPI
) -> None:
    _, case_id = await org.report()
    assert await outbox(app, UPDATED) == []  # opening is `case.opened`

    assigned = await org.client.post(
        f"/cases/v1/cases/{case_id}/assignments",
        json={"person_id": str(org.investigator), "role": "investigator"},
        headers=org.headers("handler"),
    )
    assert assigned.status_code == 201, assigned.text
    ref = await org.client.put(
        f"/cases/v1/cases/{case_id}/external-refs",
        json={"system": "workday", "id": "E-1"},
        headers=org.headers("handler"),
    )
    assert ref.status_code == 200
    again = await org.client.put(
        f"/cases/v1/cases/{case_id}/external-refs",
        json={"system": "workday", "id": "E-1"},
        headers=org.headers("handler"),
    )
    assert again.status_code == 200  # changed nothing: no event

    events = await outbox(app, UPDATED)
    assert len(events) == 2
    for event in events:
        data = CaseUpdated.model_validate(event["data"])
        assert data.case_id == case_id and data.routed_to == "case_managers"
        assert {org.involved, org.excluded, org.manager} <= set(data.restricted_person_ids)
        assert event["subject"] == f"case/{case_id}"
        assert "What happened" not in str(event)
    assert set(events[0]["data"]) == {
        "case_id",
        "number",
        "routed_to",
        "restricted_person_ids",
        "status",
        "version",
    }
