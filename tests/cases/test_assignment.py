"""Impartial assignment (conflict-of-interest rules), recusal, power-dynamics routing to
independent reviewers, sharing, and interim measures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cases_world import Org, outbox, problem
from fastapi import FastAPI


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def assign(org: Org, case_id: Any, person: str, role: str = "investigator") -> httpx.Response:
    return await org.client.post(
        f"/cases/v1/cases/{case_id}/assignments",
        json={"person_id": str(org.people[person]), "role": role},
        headers=org.headers("handler"),
    )


async def test_conflicted_people_are_refused_by_rule_without_naming_anyone(org: Org) -> None:
    _, case_id = await org.report(involved=["involved"], excluded=["excluded"])
    await org.person("ally", ["investigator", "case_manager"], "candidate")

    expectations = {
        "involved": ("involved", "investigator"),
        "excluded": ("excluded", "investigator"),
        "manager": ("above_involved", "case_manager"),
        "candidate": ("above_involved", "investigator"),
        "underling": ("reports_to_involved", "investigator"),
    }
    for person, (rule, role) in expectations.items():
        response = await assign(org, case_id, person, role)
        body = problem(response, 409, "conflict-of-interest")
        assert body["rule"] == rule, person
        for someone in org.people.values():
            assert str(someone) not in response.text

    not_held = await assign(org, case_id, "handler", "investigator")
    assert problem(not_held, 409, "conflict")["rule"] == "role_not_held"
    assert (await assign(org, case_id, "ally", "investigator")).status_code == 201
    problem(await assign(org, case_id, "ally", "investigator"), 409, "conflict")


async def test_investigators_see_only_the_cases_they_are_assigned(org: Org) -> None:
    _, case_id = await org.report()
    url = f"/cases/v1/cases/{case_id}"
    investigator = org.headers("investigator")
    assert (await org.client.get(url, headers=investigator)).status_code == 404

    assignment = await assign(org, case_id, "investigator")
    assert (await org.client.get(url, headers=investigator)).status_code == 200
    listed = await org.client.get(f"{url}/assignments", headers=investigator)
    assert [a["person_id"] for a in listed.json()["items"]] == [str(org.investigator)]

    removed = await org.client.delete(
        f"{url}/assignments/{assignment.json()['id']}", headers=org.headers("handler")
    )
    assert removed.status_code == 204
    assert (await org.client.get(url, headers=investigator)).status_code == 404
    assert (await org.client.get("/cases/v1/cases", headers=investigator)).json()["items"] == []


async def test_a_handler_who_recuses_loses_sight_and_cannot_be_assigned_again(org: Org) -> None:
    _, case_id = await org.report()
    url = f"/cases/v1/cases/{case_id}"
    await assign(org, case_id, "investigator")

    recused = await org.client.post(f"{url}/recusal", headers=org.headers("investigator"))

    assert recused.status_code == 201, recused.text
    assert (await org.client.get(url, headers=org.headers("investigator"))).status_code == 404
    assert (
        problem(await assign(org, case_id, "investigator"), 409, "conflict-of-interest")["rule"]
        == "recused"
    )
    assert (await org.client.get(f"{url}/assignments", headers=org.headers("handler"))).json()[
        "items"
    ] == []


async def test_a_case_about_leadership_goes_to_reviewers_only(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report(involved=["candidate"], excluded=[])
    url = f"/cases/v1/cases/{case_id}"

    [opened] = await outbox(app, "upstander.case.opened")
    assert opened["data"]["routed_to"] == "reviewers"
    for person in ("handler", "deputy"):
        assert (await org.client.get(url, headers=org.headers(person))).status_code == 404
    assert (await org.client.get(url, headers=org.admin(["case_manager"]))).status_code == 404
    reviewer = await org.client.get(url, headers=org.headers("reviewer"))
    assert reviewer.json()["routed_to"] == "reviewers"

    # A reviewer shares it, conflict rules still apply: the handler reports to the candidate.
    refused = await org.client.post(
        f"{url}/shares", json={"person_id": str(org.handler)}, headers=org.headers("reviewer")
    )
    assert problem(refused, 409, "conflict-of-interest")["rule"] == "reports_to_involved"
    await org.person("outside_counsel", ["case_manager"])
    shared = await org.client.post(
        f"{url}/shares",
        json={"person_id": str(org.outside_counsel)},
        headers=org.headers("reviewer"),
    )
    by_case_manager = await org.client.post(
        f"{url}/shares",
        json={"person_id": str(org.outside_counsel)},
        headers=org.headers("handler"),
    )
    assert shared.status_code == 201, shared.text
    assert (await org.client.get(url, headers=org.headers("outside_counsel"))).status_code == 200
    problem(by_case_manager, 403, "forbidden")


async def test_a_case_about_someone_above_a_case_manager_goes_to_reviewers(
    app: FastAPI, org: Org
) -> None:
    _, above = await org.report(involved=["manager"], excluded=[])
    _, below = await org.report(involved=["involved"], excluded=[])

    routes = [e["data"]["routed_to"] for e in await outbox(app, "upstander.case.opened")]
    assert routes == ["reviewers", "case_managers"]
    handler = org.headers("handler")
    assert (await org.client.get(f"/cases/v1/cases/{above}", headers=handler)).status_code == 404
    assert (await org.client.get(f"/cases/v1/cases/{below}", headers=handler)).status_code == 200


async def test_interim_measures_protect_without_burdening_the_reporter(org: Org) -> None:
    _, case_id = await org.report()
    url, headers = f"/cases/v1/cases/{case_id}/interim-measures", org.headers("handler")
    measure = {
        "kind": "no_contact",
        "starts_on": "2026-11-25",
        "ends_on": "2027-01-31",
        "approved_by": str(org.handler),
        "notes": "Separate shifts",
    }

    created = await org.client.post(url, json=measure, headers=headers)
    burden = await org.client.post(
        url, json={**measure, "kind": "schedule_change", "affects": "reporter"}, headers=headers
    )
    consented = await org.client.post(
        url,
        json={
            **measure,
            "kind": "remote_work",
            "affects": "reporter",
            "reporter_consented": True,
        },
        headers=headers,
    )
    backwards = await org.client.post(
        url, json={**measure, "ends_on": "2026-11-01"}, headers=headers
    )
    conflicted = await org.client.post(
        url, json={**measure, "approved_by": str(org.manager)}, headers=headers
    )
    listed = await org.client.get(url, headers=headers)

    assert created.status_code == 201, created.text
    assert consented.status_code == 201, consented.text
    assert problem(burden, 422, "validation-error")["errors"][0]["field"] == (
        "body.reporter_consented"
    )
    problem(backwards, 422, "validation-error")
    assert problem(conflicted, 409, "conflict-of-interest")["rule"] == "above_involved"
    assert [(m["kind"], m["notes"]) for m in listed.json()["items"]] == [
        ("no_contact", "Separate shifts"),
        ("remote_work", "Separate shifts"),
    ] or sorted(m["kind"] for m in listed.json()["items"]) == ["no_contact", "remote_work"]
