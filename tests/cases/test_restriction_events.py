"""cases tells notify when a case is hidden from more people after it opened
(`upstander.case.restricted`: the case id and the newly restricted people's ids, nothing
else), in the same transaction as the restriction, so notify can withdraw what it told them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, cloud_event, outbox
from fastapi import FastAPI

RESTRICTED = "upstander.case.restricted"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def announced(app: FastAPI, case_id: uuid.UUID) -> list[dict[str, Any]]:
    return [e for e in await outbox(app, RESTRICTED) if e["data"]["case_id"] == str(case_id)]


async def allege(org: Org, case_id: uuid.UUID, *subjects: str) -> httpx.Response:
    return await org.client.post(
        f"/cases/v1/cases/{case_id}/allegations",
        json={
            "category": "retaliation",
            "description": "Moved my shifts after I complained",
            "subject_person_ids": [str(org.people[s]) for s in subjects],
        },
        headers=org.headers("handler"),
    )


async def test_an_allegation_announces_its_subject_and_their_chain(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report(involved=[], excluded=[])
    assert await announced(app, case_id) == []

    created = await allege(org, case_id, "deputy")
    assert created.status_code == 201, created.text

    events = await announced(app, case_id)
    assert {e["subject"] for e in events} == {f"case/{case_id}"}
    assert all(set(e["data"]) == {"case_id", "person_ids"} for e in events)
    named = {p for e in events for p in e["data"]["person_ids"]}
    assert named == {str(org.deputy), str(org.manager), str(org.candidate)}

    # Naming the same person again hides the case from nobody new: nothing more to announce.
    again = await allege(org, case_id, "deputy")
    assert again.status_code == 201, again.text
    assert len(await announced(app, case_id)) == len(events)


async def test_opening_a_case_announces_no_restriction(app: FastAPI, org: Org) -> None:
    # Nobody has been told of a new case yet; its `case.opened` lists who may never be.
    _, case_id = await org.report(involved=["involved"], excluded=["excluded"])
    assert await announced(app, case_id) == []
    [opened] = await outbox(app, "upstander.case.opened")
    assert str(org.involved) in opened["data"]["restricted_person_ids"]


async def test_a_new_manager_above_an_involved_person_is_announced(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report(involved=["involved"], excluded=[])
    new_boss = await org.person("new_boss", ["admin"])
    moved = {
        "person_id": str(org.manager),
        "org_id": str(org.id),
        "email": "manager@demo.example",
        "name": "Manager",
        "roles": ["case_manager"],
        "manager_id": str(new_boss),
        "is_leadership": False,
        "language": "en",
        "active": True,
    }
    await org.send(cloud_event("upstander.person.updated", moved, org_id=org.id))

    events = await announced(app, case_id)
    assert [e["data"]["person_ids"] for e in events] == [[str(new_boss)]]
