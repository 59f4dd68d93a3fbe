"""The case workflow: transitions and their guards, acknowledgment, separation of duties,
severity and priority under If-Match, allegations and findings, links."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cases_world import Org, load_case, outbox, problem
from fastapi import FastAPI
from sqlalchemy import LargeBinary, select, type_coerce

from upstander.cases.models import CaseTransition
from upstander.kit.clock import FrozenClock


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


async def move(
    org: Org, case_id: uuid.UUID, who: str, to: str, expect: int = 201, **body: Any
) -> httpx.Response:
    response = await org.client.post(
        f"/cases/v1/cases/{case_id}/transitions", json={"to": to, **body}, headers=org.headers(who)
    )
    assert response.status_code == expect, response.text
    return response


async def test_a_case_goes_from_new_to_closed_through_every_guard(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    report_id, case_id = await org.report()
    client, url = org.client, f"/cases/v1/cases/{case_id}"
    clock.advance(timedelta(days=1))

    # Leaving `new` acknowledges: stamped, feedback counted from now, the reporter told.
    await move(org, case_id, "handler", "triage", reason="In scope")
    case = (await client.get(url, headers=org.headers("handler"))).json()
    assert case["status"] == "triage"
    assert case["acknowledged_at"] == "2026-11-25T09:30:00Z"
    assert case["feedback_by"] == "2027-02-25T09:30:00Z"
    messages = await client.get("/cases/v1/reporter/messages", headers=org.reporter(report_id))
    [ack] = messages.json()["items"]
    assert ack["author"] == "system" and ack["body"].startswith("We have received your report")

    # investigating needs an investigator
    blocked = await move(org, case_id, "handler", "investigating", expect=409)
    assert problem(blocked, 409, "transition-blocked")["unmet"] == ["investigator_assigned"]
    assigned = await client.post(
        f"{url}/assignments",
        json={"person_id": str(org.investigator), "role": "investigator"},
        headers=org.headers("handler"),
    )
    assert assigned.status_code == 201, assigned.text
    await move(org, case_id, "investigator", "investigating")

    allegation = await client.post(
        f"{url}/allegations",
        json={"category": "sexual_harassment", "description": "Comments at the office"},
        headers=org.headers("investigator"),
    )
    assert allegation.status_code == 201, allegation.text
    finding = await client.put(
        f"{url}/allegations/{allegation.json()['id']}/finding",
        json={"finding": "substantiated", "rationale": "Two witnesses agree"},
        headers=org.headers("investigator"),
    )
    assert finding.status_code == 200, finding.text
    assert finding.json()["finding_by_id"] == str(org.investigator)
    await move(org, case_id, "investigator", "decision")

    blocked = await move(org, case_id, "handler", "closed", expect=409)
    assert problem(blocked, 409, "transition-blocked")["unmet"] == ["outcome", "feedback_sent"]
    feedback = await client.post(
        f"{url}/messages",
        json={"body": "We have acted on your report.", "is_feedback": True},
        headers=org.headers("handler"),
    )
    assert feedback.status_code == 201 and feedback.json()["is_feedback"] is True

    # Whoever wrote a finding cannot approve the decision.
    refused = await move(
        org, case_id, "investigator", "closed", expect=403, outcome="corrective_action"
    )
    problem(refused, 403, "separation-of-duties")
    closed = await move(org, case_id, "handler", "closed", outcome="corrective_action")
    assert closed.headers["etag"] == f'"{(await load_case(app, case_id)).version}"'

    case = (await client.get(url, headers=org.headers("handler"))).json()
    assert (case["status"], case["outcome"]) == ("closed", "corrective_action")
    assert case["closed_at"] is not None and case["feedback_sent_at"] is not None
    history = (await client.get(f"{url}/transitions", headers=org.headers("handler"))).json()
    assert [(t["from_status"], t["to_status"]) for t in history["items"]] == [
        ("new", "triage"),
        ("triage", "investigating"),
        ("investigating", "decision"),
        ("decision", "closed"),
    ]
    assert history["items"][0]["reason"] == "In scope"
    assert history["items"][0]["actor_id"] == str(org.handler)
    changed = await outbox(app, "upstander.case.status_changed")
    assert [(e["data"]["from"], e["data"]["to"]) for e in changed][-1] == ("decision", "closed")
    assert str(org.involved) in changed[-1]["data"]["restricted_person_ids"]


async def test_an_invalid_transition_names_the_allowed_ones(org: Org) -> None:
    _, case_id = await org.report()

    response = await move(org, case_id, "handler", "closed", expect=409)

    body = problem(response, 409, "invalid-transition")
    assert body["allowed"] == ["triage", "referred", "dismissed"]
    assert body["current"] == "new"


async def test_dismissing_and_reopening_need_a_reason(app: FastAPI, org: Org, clock: Any) -> None:
    _, case_id = await org.report()

    problem(await move(org, case_id, "handler", "dismissed", expect=422), 422, "validation-error")
    await move(org, case_id, "handler", "dismissed", reason="Out of scope: a billing dispute")
    missing = await move(org, case_id, "handler", "triage", expect=422)
    assert problem(missing, 422, "validation-error")["errors"][0]["field"] == "body.reason"
    clock.advance(timedelta(days=10))
    await move(org, case_id, "handler", "triage", reason="New facts came to light")

    case = await load_case(app, case_id)
    assert case.status == "triage" and case.closed_at is None
    assert case.feedback_by == clock.now().replace(year=2027, month=3)  # 3 months from reopening


async def test_referral_records_who_it_went_to(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()

    problem(await move(org, case_id, "handler", "referred", expect=422), 422, "validation-error")
    await move(org, case_id, "handler", "referred", referred_to="police", reason="A crime")

    case = await load_case(app, case_id)
    assert (case.status, case.referred_to) == ("referred", "police")
    assert case.acknowledged_at is not None


async def test_the_acknowledgment_speaks_the_reporters_language(org: Org) -> None:
    report_id, case_id = await org.report(language="es-MX")

    await move(org, case_id, "handler", "triage")

    messages = await org.client.get("/cases/v1/reporter/messages", headers=org.reporter(report_id))
    assert messages.json()["items"][0]["body"].startswith("Hemos recibido tu denuncia")


async def test_transition_reasons_are_sealed(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report()
    await move(org, case_id, "handler", "dismissed", reason="Kiwi-papaya reason")

    async with app.state.sessionmaker() as session:
        raw = await session.scalar(select(type_coerce(CaseTransition.reason, LargeBinary)))

    assert raw is not None and b"Kiwi-papaya" not in bytes(raw)


async def test_severity_and_priority_change_under_if_match(org: Org) -> None:
    _, case_id = await org.report()
    url, headers = f"/cases/v1/cases/{case_id}", org.headers("handler")
    etag = (await org.client.get(url, headers=headers)).headers["etag"]

    updated = await org.client.patch(
        url, json={"severity": "high"}, headers={**headers, "If-Match": etag}
    )
    stale = await org.client.patch(
        url, json={"priority": "urgent"}, headers={**headers, "If-Match": etag}
    )
    unconditional = await org.client.patch(url, json={"priority": "urgent"}, headers=headers)
    empty = await org.client.patch(url, json={}, headers=headers)

    assert updated.status_code == 200, updated.text
    assert updated.json()["severity"] == "high"
    assert updated.headers["etag"] != etag
    problem(stale, 412, "stale-version")
    assert unconditional.status_code == 200
    assert unconditional.json() | {"severity": "high", "priority": "urgent"} == unconditional.json()
    problem(empty, 422, "validation-error")


async def test_an_allegations_subjects_lose_sight_of_the_case(app: FastAPI, org: Org) -> None:
    _, case_id = await org.report(involved=[])
    url = f"/cases/v1/cases/{case_id}"
    assert (await org.client.get(url, headers=org.headers("deputy"))).status_code == 200

    created = await org.client.post(
        f"{url}/allegations",
        json={
            "category": "retaliation",
            "description": "Moved my shifts after I complained",
            "subject_person_ids": [str(org.deputy)],
        },
        headers=org.headers("handler"),
    )

    assert created.status_code == 201, created.text
    assert (await org.client.get(url, headers=org.headers("deputy"))).status_code == 404
    # deputy is no one's manager, but their manager is above them: the chain loses sight too
    assert (await org.client.get(url, headers=org.headers("manager"))).status_code == 404
    listed = await org.client.get(f"{url}/allegations", headers=org.headers("handler"))
    assert listed.json()["items"][0]["description"] == "Moved my shifts after I complained"


async def test_cases_link_both_ways_and_never_to_a_hidden_case(org: Org) -> None:
    _, first = await org.report()
    _, second = await org.report()
    _, hidden = await org.report(involved=["handler"])
    headers = org.headers("handler")

    linked = await org.client.post(
        f"/cases/v1/cases/{first}/links",
        json={"case_id": str(second), "kind": "same_subject"},
        headers=headers,
    )
    again = await org.client.post(
        f"/cases/v1/cases/{second}/links",
        json={"case_id": str(first), "kind": "same_subject"},
        headers=headers,
    )
    to_hidden = await org.client.post(
        f"/cases/v1/cases/{first}/links",
        json={"case_id": str(hidden), "kind": "retaliation_follow_up"},
        headers=headers,
    )
    back = await org.client.get(f"/cases/v1/cases/{second}/links", headers=headers)

    assert linked.status_code == 201, linked.text
    problem(again, 409, "conflict")
    problem(to_hidden, 404, "not-found")
    [link] = back.json()["items"]
    assert (link["case_id"], link["kind"]) == (str(first), "same_subject")
