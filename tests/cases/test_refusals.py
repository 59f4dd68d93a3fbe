"""Refused actions on a case are audited: a 403, a 404 on a case hidden from the caller, a 409
guard and a 412 stale write each leave a `case.refused` entry (method, route, status; no
content) written in its own transaction, while the refused request's own work is rolled back.
A 404 on an id that names no case of the caller's organisation leaves nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, auth, load_case, problem
from fastapi import FastAPI
from sqlalchemy import func, select

from upstander.cases.access import CaseCtx, LockedCase, case_router
from upstander.cases.models import AuditEntry, Priority
from upstander.kit.errors import Conflict

CASE_ROUTE = "/cases/v1/cases/{case_id}"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def case_entries(org: Org, case_id: uuid.UUID) -> list[dict[str, Any]]:
    """The case's audit entries, read as an auditor of its organisation."""
    response = await org.client.get(
        "/cases/v1/audit",
        params={"case_id": str(case_id), "limit": 200},
        headers=org.admin(["auditor"]),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def refusals(org: Org, case_id: uuid.UUID) -> list[dict[str, Any]]:
    return [e for e in await case_entries(org, case_id) if e["action"] == "case.refused"]


async def refusal_count(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "case.refused")
        )
    return int(count or 0)


class _Ids(dict[str, Any]):
    """The case's id, and a fresh id for any other one in a path."""

    def __missing__(self, key: str) -> str:
        return str(uuid.uuid4())


async def assert_chain_intact(org: Org) -> None:
    verified = await org.client.get("/cases/v1/audit/verify", headers=org.admin(["auditor"]))
    assert verified.status_code == 200, verified.text
    assert verified.json()["intact"] is True, verified.json()


@pytest.mark.parametrize("who", ["involved", "excluded"])
async def test_a_person_hidden_from_a_case_gets_404_and_the_refusal_is_audited(
    org: Org, who: str
) -> None:
    _, case_id = await org.report()
    # A case manager's role would show them every case routed to case managers; being
    # involved in this one (or excluded by the reporter) hides it all the same.
    response = await org.client.get(
        f"/cases/v1/cases/{case_id}", headers=org.headers(who, ["case_manager"])
    )

    problem(response, 404, "not-found")
    [refused] = await refusals(org, case_id)
    assert refused["detail"] == {"method": "GET", "route": CASE_ROUTE, "status": 404}
    assert refused["actor_id"] == str(org.people[who])
    assert refused["case_id"] == str(case_id)
    await assert_chain_intact(org)


async def test_a_role_without_access_to_cases_gets_404_and_the_refusal_is_audited(
    org: Org,
) -> None:
    _, case_id = await org.report()

    response = await org.client.get(
        f"/cases/v1/cases/{case_id}/messages", headers=org.headers("involved", ["staff"])
    )

    problem(response, 404, "not-found")
    [refused] = await refusals(org, case_id)
    assert refused["detail"] == {
        "method": "GET",
        "route": "/cases/v1/cases/{case_id}/messages",
        "status": 404,
    }


async def test_an_invalid_transition_is_refused_with_409_and_audited(
    app: FastAPI, org: Org
) -> None:
    _, case_id = await org.report()

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/transitions",
        json={"to": "closed", "reason": "Some words that must not reach the trail"},
        headers=org.headers("handler"),
    )

    problem(response, 409, "invalid-transition")
    entries = await case_entries(org, case_id)
    [refused] = [e for e in entries if e["action"] == "case.refused"]
    assert refused["detail"] == {
        "method": "POST",
        "route": "/cases/v1/cases/{case_id}/transitions",
        "status": 409,
    }
    assert refused["actor_id"] == str(org.handler)
    assert "case.transition" not in [e["action"] for e in entries]
    assert (await load_case(app, case_id)).status.value == "new"
    await assert_chain_intact(org)


async def test_a_stale_if_match_is_refused_with_412_and_audited(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()
    url, handler = f"/cases/v1/cases/{case_id}", org.headers("handler")
    etag = (await org.client.get(url, headers=handler)).headers["ETag"]
    changed = await org.client.patch(
        url, json={"priority": "high"}, headers={**handler, "If-Match": etag}
    )
    assert changed.status_code == 200, changed.text

    stale = await org.client.patch(
        url, json={"severity": "critical"}, headers={**handler, "If-Match": etag}
    )

    problem(stale, 412, "stale-version")
    [refused] = await refusals(org, case_id)
    assert refused["detail"] == {"method": "PATCH", "route": CASE_ROUTE, "status": 412}
    case = await load_case(app, case_id)
    assert case.severity is None and case.version == 2
    await assert_chain_intact(org)


async def test_a_404_for_an_unknown_id_or_another_orgs_case_leaves_no_entry(
    app: FastAPI, org: Org, client: httpx.AsyncClient, mint: Any, service_token: str
) -> None:
    other = await Org(client, mint, service_token).build()
    _, other_case_id = await other.report()
    before = await refusal_count(app)

    unknown = await client.get(f"/cases/v1/cases/{uuid.uuid4()}", headers=org.headers("handler"))
    elsewhere = await client.get(f"/cases/v1/cases/{other_case_id}", headers=org.headers("handler"))
    cross_org = await client.post(
        f"/cases/v1/cases/{other_case_id}/transitions",
        json={"to": "triage"},
        headers=auth(mint(org=org.id, roles=["admin", "reviewer"])),
    )

    for response in (unknown, elsewhere, cross_org):
        problem(response, 404, "not-found")
    assert await refusal_count(app) == before == 0
    assert await refusals(other, other_case_id) == []


async def test_a_refused_transition_leaves_none_of_its_own_changes(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()
    url, handler = f"/cases/v1/cases/{case_id}", org.headers("handler")
    triaged = await org.client.post(f"{url}/transitions", json={"to": "triage"}, headers=handler)
    assert triaged.status_code == 201, triaged.text

    # The service stamps `feedback_sent_at` before it finds no investigator assigned.
    blocked = await org.client.post(
        f"{url}/transitions",
        json={"to": "investigating", "feedback_sent_at": "2026-11-24T09:00:00Z"},
        headers=handler,
    )

    problem(blocked, 409, "transition-blocked")
    case = await load_case(app, case_id)
    assert case.status.value == "triage" and case.feedback_sent_at is None
    assert [r["detail"]["status"] for r in await refusals(org, case_id)] == [409]


# A route that writes (the case and an audit entry, flushed: on SQLite the request then holds
# the write lock) and is refused afterwards, as a guard found late in a service would be.
probe = case_router(tags=["probe"])


@probe.post("/cases/{case_id}/refusal-probe", include_in_schema=False)
async def refused_after_writing(case: LockedCase, ctx: CaseCtx) -> None:
    case.priority = Priority.URGENT
    await ctx.audit("probe.write", case)
    await ctx.session.flush()
    raise Conflict("Refused after writing.")


async def test_a_refusal_after_flushed_writes_is_recorded_and_the_writes_are_not(
    app: FastAPI, org: Org
) -> None:
    app.include_router(probe)
    _, case_id = await org.report()

    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/refusal-probe", headers=org.headers("handler")
    )

    problem(response, 409, "conflict")
    entries = await case_entries(org, case_id)
    assert "probe.write" not in [e["action"] for e in entries]
    [refused] = [e for e in entries if e["action"] == "case.refused"]
    assert refused["detail"] == {
        "method": "POST",
        "route": "/cases/v1/cases/{case_id}/refusal-probe",
        "status": 409,
    }
    assert (await load_case(app, case_id)).priority == Priority.NORMAL
    await assert_chain_intact(org)


async def test_every_case_route_audits_a_refusal(app: FastAPI, org: Org) -> None:
    """Whatever the route under `/cases/v1/cases/{case_id}`, a caller the case is hidden from is
    refused (404, or 403 where the route's roles exclude them first) and the trail says so."""
    _, case_id = await org.report()
    hidden = org.headers("involved", ["case_manager"])
    operations = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith(CASE_ROUTE)
        for method in item
    ]
    assert len(operations) >= 20
    for method, route in operations:
        url = route.format_map(_Ids(case_id=case_id))
        response = await org.client.request(method, url, headers=hidden)
        assert response.status_code in (403, 404), (method, route, response.text)
        latest = (await refusals(org, case_id))[-1]["detail"]
        assert latest == {"method": method, "route": route, "status": response.status_code}
