"""Interviews: recorded with the same fields for every role, corrected only by new versions
(the old record stays readable), validated against the case organisation's directory and the
case's evidence, hidden from whoever may not see the case, audited, and gone with the case's
data key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cases_world import Org, auth, problem
from fastapi import FastAPI
from investigation_support import (
    audit_entries,
    database_bytes,
    hidden_callers,
    ids_only,
    marker,
    shred,
    staff_headers,
)
from sqlalchemy import func, select

from upstander.cases.interviews.service import interviews_for_case
from upstander.cases.models import Case, CaseInterview, CaseInterviewVersion, EvidenceItem
from upstander.kit.clock import FrozenClock
from upstander.kit.scopes import scopes_for_roles

HELD_AT = "2026-11-23T15:00:00+01:00"


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    world = await Org(client, mint, service_token).build()
    await world.person("witness", ["staff"], "candidate")
    return world


@pytest.fixture
async def case_id(org: Org) -> uuid.UUID:
    _, opened = await org.report(involved=["involved"], excluded=["excluded"])
    return opened


def interviews_url(case_id: uuid.UUID) -> str:
    return f"/cases/v1/cases/{case_id}/interviews"


def interview(org: Org, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "interviewee": {"person_id": str(org.witness)},
        "role": "witness",
        "held_at": HELD_AT,
        "summary": "Saw them leave together.",
        "statement": "On the evening of the 18th I was locking up when ...",
    }
    payload.update(overrides)
    return payload


async def record(
    org: Org, case_id: uuid.UUID, payload: dict[str, Any], who: str = "handler"
) -> dict[str, Any]:
    response = await org.client.post(
        interviews_url(case_id), json=payload, headers=org.headers(who)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count_interviews(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CaseInterview)) or 0)


async def add_evidence(app: FastAPI, case: uuid.UUID, org_id: uuid.UUID) -> uuid.UUID:
    """An evidence item on `case`, written directly (the evidence API is tested elsewhere)."""
    evidence_id = uuid.uuid4()
    now = datetime(2026, 11, 24, tzinfo=UTC)
    async with app.state.sessionmaker() as session, session.begin():
        session.add(
            EvidenceItem(
                id=evidence_id,
                org_id=org_id,
                case_id=case,
                content_type="image/png",
                size=0,
                chunk_count=0,
                collected_at=now,
                uploaded_by_kind="person",
                uploaded_by_id="someone",
                created_at=now,
                updated_at=now,
            )
        )
    return evidence_id


# ----------------------------------------------------------------------------- round trips


async def test_an_interview_is_recorded_with_every_field_and_read_back(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    evidence_id = await add_evidence(app, case_id, org.id)
    payload = interview(
        org,
        interviewer_person_ids=[str(org.handler), str(org.reviewer)],
        attendees={"person_ids": [str(org.deputy)], "names": ["Sam Ortiz (representative)"]},
        evidence_item_ids=[str(evidence_id)],
    )

    created = await record(org, case_id, payload)
    read = await org.client.get(
        f"{interviews_url(case_id)}/{created['id']}", headers=org.headers("handler")
    )

    assert read.status_code == 200, read.text
    got = read.json()
    assert got == created
    assert got["interviewee"] == {"person_id": str(org.witness), "name": None}
    assert got["role"] == "witness" and got["version"] == 1
    assert got["held_at"] == "2026-11-23T14:00:00Z"  # stored in UTC
    assert got["interviewer_person_ids"] == [str(org.handler), str(org.reviewer)]
    assert got["attendees"] == {
        "person_ids": [str(org.deputy)],
        "names": ["Sam Ortiz (representative)"],
    }
    assert got["summary"] == payload["summary"] and got["statement"] == payload["statement"]
    assert got["evidence_item_ids"] == [str(evidence_id)]
    assert got["author"] == {"kind": "person", "id": str(org.handler)}
    assert [v["number"] for v in got["versions"]] == [1]


async def test_the_interviewer_defaults_to_the_caller(org: Org, case_id: uuid.UUID) -> None:
    created = await record(org, case_id, interview(org), who="reviewer")

    assert created["interviewer_person_ids"] == [str(org.reviewer)]


async def test_someone_outside_the_directory_is_interviewed_by_name(
    org: Org, case_id: uuid.UUID
) -> None:
    created = await record(
        org, case_id, interview(org, interviewee={"name": "A volunteer"}, role="other")
    )

    assert created["interviewee"] == {"person_id": None, "name": "A volunteer"}


@pytest.mark.parametrize("role", ["reporter", "witness", "respondent", "other"])
async def test_every_role_is_recorded_with_the_same_fields(
    org: Org, case_id: uuid.UUID, role: str
) -> None:
    payload = interview(
        org,
        role=role,
        interviewee={"person_id": str(org.involved)} if role == "respondent" else {"name": "R"},
        attendees={"person_ids": [], "names": ["Their support person"]},
    )

    created = await record(org, case_id, payload)

    assert created["role"] == role
    assert created["statement"] == payload["statement"]
    assert created["attendees"]["names"] == ["Their support person"]


async def test_interviews_are_listed_oldest_first_one_page_at_a_time(
    org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    summaries = [marker(f"summary{i}") for i in range(3)]
    for summary in summaries:
        await record(org, case_id, interview(org, summary=summary))
        clock.advance(timedelta(minutes=1))

    first = await org.client.get(
        interviews_url(case_id), params={"limit": 2}, headers=org.headers("handler")
    )
    rest = await org.client.get(
        interviews_url(case_id),
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=org.headers("handler"),
    )

    assert [i["summary"] for i in first.json()["items"]] == summaries[:2]
    assert [i["summary"] for i in rest.json()["items"]] == summaries[2:]
    assert rest.json()["next_cursor"] is None


async def test_a_correction_is_a_new_version_and_the_old_record_stays_readable(
    org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    created = await record(org, case_id, interview(org))
    clock.advance(timedelta(hours=1))
    url = f"{interviews_url(case_id)}/{created['id']}"

    corrected = await org.client.post(
        f"{url}/versions",
        json={"held_at": "2026-11-23T16:00:00+01:00", "statement": None, "reason": "Time."},
        headers=org.headers("reviewer"),
    )
    read = await org.client.get(url, headers=org.headers("handler"))
    listed = await org.client.get(interviews_url(case_id), headers=org.headers("handler"))

    assert corrected.status_code == 201, corrected.text
    got = read.json()
    assert got == corrected.json()
    assert got["version"] == 2 and got["held_at"] == "2026-11-23T15:00:00Z"
    assert got["statement"] is None and got["summary"] == created["summary"]  # carried over
    assert got["interviewee"] == created["interviewee"]
    old, new = got["versions"]
    assert (old["number"], old["held_at"], old["statement"]) == (
        1,
        created["held_at"],
        created["statement"],
    )
    assert old["reason"] is None and old["author"]["id"] == str(org.handler)
    assert (new["number"], new["reason"], new["author"]["id"]) == (2, "Time.", str(org.reviewer))
    [item] = listed.json()["items"]
    assert item["version"] == 2 and "versions" not in item


async def test_interviews_for_case_returns_every_interview_with_its_versions_loaded(
    app: FastAPI, org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    first = await record(org, case_id, interview(org, summary="one"))
    clock.advance(timedelta(minutes=1))
    await record(org, case_id, interview(org, summary="two"))
    await org.client.post(
        f"{interviews_url(case_id)}/{first['id']}/versions",
        json={"summary": "one, corrected"},
        headers=org.headers("handler"),
    )

    async with app.state.sessionmaker() as session:
        case = await session.get_one(Case, case_id)
        rows = await interviews_for_case(session, case)

    assert [[v.summary for v in i.versions] for i in rows] == [["one", "one, corrected"], ["two"]]


# ----------------------------------------------------------------------------- who may see them


async def test_people_the_case_is_hidden_from_get_404_on_interviews(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    created = await record(org, case_id, interview(org, summary=marker("secret")))
    callers = await hidden_callers(org, case_id)
    url = interviews_url(case_id)

    for who, headers in callers.items():
        responses = [
            await org.client.get(url, headers=headers),
            await org.client.post(url, json=interview(org), headers=headers),
            await org.client.get(f"{url}/{created['id']}", headers=headers),
            await org.client.post(
                f"{url}/{created['id']}/versions", json={"summary": "x"}, headers=headers
            ),
        ]
        for response in responses:
            problem(response, 404, "not-found")
            assert "secret" not in response.text, who
    assert await count_interviews(app) == 1


async def test_staff_without_a_handler_role_are_refused(org: Org, case_id: uuid.UUID) -> None:
    headers = staff_headers(org)

    listing = await org.client.get(interviews_url(case_id), headers=headers)
    writing = await org.client.post(interviews_url(case_id), json=interview(org), headers=headers)

    # Someone who handles no case gets the 404 of a hidden case, the same for every case id.
    problem(listing, 404, "not-found")
    problem(writing, 404, "not-found")


# ----------------------------------------------------------------------------- bad input


def substitute(value: Any, placeholder: str, replacement: str) -> Any:
    """`value` with every string equal to `placeholder` replaced (in nested dicts and lists)."""
    if isinstance(value, dict):
        return {k: substitute(v, placeholder, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, placeholder, replacement) for v in value]
    return replacement if value == placeholder else value


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"summary": ""}, "body.summary"),
        ({"summary": "   "}, "body.summary"),
        ({"summary": None}, "body.summary"),
        ({"statement": "x" * 100_001}, "body.statement"),
        ({"summary": "x" * 10_001}, "body.summary"),
        ({"role": "accused"}, "body.role"),
        ({"held_at": "2026-11-23T15:00:00"}, "body.held_at"),
        ({"held_at": "2026-12-24T15:00:00Z"}, "body.held_at"),
        ({"interviewee": {}}, "body.interviewee"),
        ({"interviewee": {"name": "A", "person_id": str(uuid.uuid4())}}, "body.interviewee"),
        ({"interviewee": {"person_id": str(uuid.uuid4())}}, "body.interviewee.person_id"),
        ({"interviewee": {"person_id": "OTHER"}}, "body.interviewee.person_id"),
        ({"attendees": {"person_ids": ["OTHER"]}}, "body.attendees.person_ids"),
        ({"attendees": {"names": [""]}}, "body.attendees.names.0"),
        ({"attendees": {"names": ["x"] * 51}}, "body.attendees.names"),
        ({"interviewer_person_ids": ["OTHER"]}, "body.interviewer_person_ids"),
        ({"interviewer_person_ids": []}, "body.interviewer_person_ids"),
        ({"evidence_item_ids": [str(uuid.uuid4())]}, "body.evidence_item_ids"),
        ({"transcript": "x"}, "body.transcript"),
    ],
    ids=[
        "empty_summary",
        "blank_summary",
        "null_summary",
        "statement_too_long",
        "summary_too_long",
        "unknown_role",
        "naive_time",
        "future_time",
        "nobody",
        "person_and_name",
        "unknown_person",
        "other_org_person",
        "other_org_attendee",
        "empty_attendee_name",
        "too_many_attendees",
        "other_org_interviewer",
        "no_interviewer",
        "unknown_evidence",
        "unknown_field",
    ],
)
async def test_a_bad_interview_is_a_422_problem(
    app: FastAPI,
    org: Org,
    case_id: uuid.UUID,
    client: httpx.AsyncClient,
    mint: Any,
    service_token: str,
    change: dict[str, Any],
    field: str,
) -> None:
    payload = interview(org, **change)
    if "OTHER" in str(change):  # a person of another organisation's directory
        other = await Org(client, mint, service_token).build()
        payload = substitute(payload, "OTHER", str(other.handler))

    response = await org.client.post(
        interviews_url(case_id), json=payload, headers=org.headers("handler")
    )

    body = problem(response, 422, "validation-error")
    assert field in [e["field"] for e in body["errors"]], body
    assert await count_interviews(app) == 0


async def test_an_interviewer_with_a_conflict_of_interest_is_409(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    response = await org.client.post(
        interviews_url(case_id),
        json=interview(org, interviewer_person_ids=[str(org.manager)]),  # above the involved
        headers=org.headers("handler"),
    )

    assert problem(response, 409, "conflict-of-interest")["rule"] == "above_involved"
    assert await count_interviews(app) == 0


async def test_an_evidence_item_of_another_case_is_refused(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    _, other_case = await org.report()
    elsewhere = await add_evidence(app, other_case, org.id)

    response = await org.client.post(
        interviews_url(case_id),
        json=interview(org, evidence_item_ids=[str(elsewhere)]),
        headers=org.headers("handler"),
    )

    problem(response, 422, "validation-error")


async def test_an_api_client_must_name_the_interviewers(org: Org, case_id: uuid.UUID) -> None:
    token = org.mint(
        org=org.id,
        roles=["case_manager"],
        sub="client-hr-sync",
        typ="client",
        scope=" ".join(sorted(scopes_for_roles(["case_manager"]))),
        owner=str(org.handler),  # a client acts within what the person who registered it sees
    )
    headers = auth(token)

    unnamed = await org.client.post(interviews_url(case_id), json=interview(org), headers=headers)
    named = await org.client.post(
        interviews_url(case_id),
        json=interview(org, interviewer_person_ids=[str(org.handler)]),
        headers=headers,
    )

    problem(unnamed, 422, "validation-error")
    assert named.status_code == 201, named.text
    assert named.json()["author"] == {"kind": "client", "id": "client-hr-sync"}


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"reason": "only a reason"},
        {"summary": None},
        {"interviewee": None},
        {"summary": ""},
        {"held_at": "2026-11-23T15:00:00"},
        {"interviewee": {"person_id": str(uuid.uuid4())}},
        {"summary": "x", "notes": "y"},
    ],
    ids=[
        "nothing",
        "only_reason",
        "null_summary",
        "null_interviewee",
        "empty_summary",
        "naive_time",
        "unknown_person",
        "unknown_field",
    ],
)
async def test_a_bad_correction_is_a_422_problem_and_adds_no_version(
    app: FastAPI, org: Org, case_id: uuid.UUID, payload: dict[str, Any]
) -> None:
    created = await record(org, case_id, interview(org))

    response = await org.client.post(
        f"{interviews_url(case_id)}/{created['id']}/versions",
        json=payload,
        headers=org.headers("handler"),
    )

    problem(response, 422, "validation-error")
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CaseInterviewVersion)) == 1


# ----------------------------------------------------------------------------- audit


async def test_recording_correcting_listing_and_reading_interviews_is_audited_by_id(
    app: FastAPI, org: Org, case_id: uuid.UUID
) -> None:
    created = await record(org, case_id, interview(org, summary=marker("audited")))
    url = f"{interviews_url(case_id)}/{created['id']}"
    await org.client.post(f"{url}/versions", json={"role": "other"}, headers=org.headers("handler"))
    await org.client.get(interviews_url(case_id), headers=org.headers("handler"))
    await org.client.get(url, headers=org.headers("handler"))

    entries = await audit_entries(app, case_id, "interview.")

    assert [(e.action, e.detail) for e in entries] == [
        ("interview.create", {"interview_id": created["id"], "version": 1}),
        ("interview.correct", {"interview_id": created["id"], "version": 2}),
        ("interview.list", {"interview_ids": [created["id"]]}),
        ("interview.read", {"interview_id": created["id"], "version": 2}),
    ]
    assert all(e.actor_id == str(org.handler) and ids_only(e.detail) for e in entries)


# ----------------------------------------------------------------------------- shredding


async def test_interviews_are_sealed_at_rest_and_gone_once_the_case_is_shredded(
    app: FastAPI, org: Org, case_id: uuid.UUID, clock: FrozenClock
) -> None:
    if not app.state.settings.database_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file")
    texts = {
        "name": marker("interviewee"),
        "attendee": marker("attendee"),
        "summary": marker("summary"),
        "statement": marker("statement"),
        "fixed": marker("statement-fixed"),
        "reason": marker("reason"),
    }
    created = await record(
        org,
        case_id,
        interview(
            org,
            interviewee={"name": texts["name"]},
            attendees={"names": [texts["attendee"]]},
            summary=texts["summary"],
            statement=texts["statement"],
        ),
    )
    url = f"{interviews_url(case_id)}/{created['id']}"
    fixed = await org.client.post(
        f"{url}/versions",
        json={"statement": texts["fixed"], "reason": texts["reason"]},
        headers=org.headers("handler"),
    )
    assert fixed.status_code == 201, fixed.text
    number = (
        await org.client.get(f"/cases/v1/cases/{case_id}", headers=org.headers("handler"))
    ).json()["number"]

    await shred(app, clock, case_id)

    problem(await org.client.get(interviews_url(case_id), headers=org.admin()), 404, "not-found")
    problem(await org.client.get(url, headers=org.headers("reviewer")), 404, "not-found")
    async with app.state.sessionmaker() as session:
        versions = (await session.scalars(select(CaseInterviewVersion))).all()
    for version in versions:
        sealed = (version.interviewee, version.attendees, version.summary, version.statement)
        assert sealed == (None, None, None, None) and version.reason is None
    on_disk = database_bytes(app)
    assert number.encode() in on_disk  # the scan reads the right files
    for text in texts.values():
        assert text.encode() not in on_disk
