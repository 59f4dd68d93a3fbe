"""The case change feed's tombstones (a case deleted past retention, its content shredded) and
what an entry carries by scope: metadata with `cases:read`, the report too with
`cases:content` and `include=report` (each read audited)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, auth
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.models import AuditEntry, Case
from upstander.cases.retention.service import delete_case

FEED = "/cases/v1/changes"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def hr_client(org: Org, scope: str, owner: str = "handler") -> dict[str, str]:
    token = org.mint(
        org=org.id, roles=[], sub="cl_hr", typ="client", scope=scope, owner=str(org.people[owner])
    )
    return auth(token)


async def _sync(
    org: Org, headers: dict[str, str], cursor: str | None = None, **extra: Any
) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": 2, **extra, **({"cursor": cursor} if cursor else {})}
        response = await org.client.get(FEED, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return items, cursor


async def _delete(app: FastAPI, case_id: uuid.UUID) -> None:
    """What the retention pass does to a case past its retention."""
    async with app.state.sessionmaker() as session:
        case = await session.get_one(Case, case_id)
        await delete_case(session, case, vault=app.state.vault, now=app.state.clock.now())
        await session.commit()


async def test_a_deleted_case_leaves_a_tombstone_and_nothing_else(org: Org, app: FastAPI) -> None:
    kept = (await org.report())[1]
    gone = (await org.report())[1]
    handler = org.headers("handler")
    put = await org.client.put(
        f"/cases/v1/cases/{gone}/external-refs",
        json={"system": "workday", "id": "E-7"},
        headers=handler,
    )
    assert put.status_code == 200
    before, cursor = await _sync(org, handler)
    assert str(gone) in {item["case_id"] for item in before}

    await _delete(app, gone)
    after, _ = await _sync(org, handler, cursor)
    [tombstone] = after
    assert tombstone["case_id"] == str(gone) and tombstone["change"] == "deleted"
    assert tombstone["number"] is None and tombstone["status"] == "deleted"
    assert tombstone["external_refs"] == [] and tombstone["report"] is None
    assert tombstone["changed_at"] is not None

    # A sync from scratch sees the tombstone only: the case's earlier changes are gone.
    fresh, _ = await _sync(org, handler)
    assert [(i["case_id"], i["change"]) for i in fresh if i["case_id"] == str(gone)] == [
        (str(gone), "deleted")
    ]
    assert str(kept) in {i["case_id"] for i in fresh}

    # Only callers whose roles open the case's routing hear of it.
    assert (await _sync(org, org.headers("investigator")))[0] == []
    reviewer = (await _sync(org, org.headers("reviewer")))[0]
    assert (str(gone), "deleted") in {(i["case_id"], i["change"]) for i in reviewer}


async def test_a_tombstone_of_a_reviewers_case_stays_with_reviewers(org: Org, app: FastAPI) -> None:
    leadership = (await org.report(involved=["candidate"], excluded=[]))[1]
    await _delete(app, leadership)
    assert str(leadership) not in {
        i["case_id"] for i in (await _sync(org, org.headers("handler")))[0]
    }
    seen = (await _sync(org, org.headers("reviewer")))[0]
    assert [i["change"] for i in seen if i["case_id"] == str(leadership)] == ["deleted"]


async def test_what_a_change_carries_depends_on_the_caller_s_scopes(org: Org, app: FastAPI) -> None:
    case_id = (await org.report())[1]
    metadata = (await _sync(org, hr_client(org, "cases:read")))[0]
    assert [i["case_id"] for i in metadata] == [str(case_id)]
    assert metadata[0]["report"] is None
    assert "What happened" not in str(metadata)

    refused = await org.client.get(
        FEED, params={"include": "report"}, headers=hr_client(org, "cases:read")
    )
    assert refused.status_code == 403 and refused.json()["missing_scopes"] == ["cases:content"]
    with_content = hr_client(org, "cases:read cases:content")
    assert (await _sync(org, with_content))[0][0]["report"] is None  # not asked for
    content = (await _sync(org, with_content, include="report"))[0]
    assert content[0]["report"]["description"] == "What happened"
    assert content[0]["report"]["case_id"] == str(case_id)
    async with app.state.sessionmaker() as session:
        reads = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "report.read", AuditEntry.case_id == case_id
                )
            )
        ).all()
    assert len(reads) == 1 and reads[0].detail == {"via": "changes"}

    # A person's token narrowed away from `cases:content` carries metadata only.
    narrowed = auth(
        org.mint(org=org.id, roles=["case_manager"], sub=org.people["handler"], scope="cases:read")
    )
    narrowed_ask = await org.client.get(FEED, params={"include": "report"}, headers=narrowed)
    assert narrowed_ask.status_code == 403
    # A case whose content is destroyed: a tombstone, never a report.
    await _delete(app, case_id)
    [tombstone] = (await _sync(org, with_content, include="report"))[0]
    assert tombstone["change"] == "deleted" and tombstone["report"] is None
