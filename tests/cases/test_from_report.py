"""From report to case: events from intake open the case once, its content is sealed, the
people it must never reach never see it, and the reporter and handlers talk both ways."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import LargeBinary, func, select, text, type_coerce

from upstander.cases.directory.service import managers_above
from upstander.cases.models import (
    Case,
    CaseAttachment,
    CaseReport,
    CaseRestriction,
    Message,
    Outbox,
)
from upstander.kit.clock import FrozenClock

SUBMITTED_AT = "2026-11-24T09:30:00+00:00"
DESCRIPTION = "Zanzibar-quokka: he cornered me in the copy room"
WITNESS = "Octavia Witnessworth"
CONTACT = "secret-reporter@example.net"
EVENTS_URL = "/cases/internal/events"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cloud_event(
    type_: str, data: dict[str, Any], *, org_id: uuid.UUID, subject: str = "x"
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/intake" if ".report." in type_ else "/gateway",
        "type": type_,
        "subject": subject,
        "time": SUBMITTED_AT,
        "datacontenttype": "application/json",
        "orgid": str(org_id),
        "data": data,
    }


@dataclass
class World:
    """An org with a directory: case managers, one of whom the report names, one the
    reporter excludes, and the named one's chain of command (manager, then the candidate)."""

    org_id: uuid.UUID
    handler: uuid.UUID  # a case manager with nothing to do with the report
    involved: uuid.UUID  # a case manager the report names
    excluded: uuid.UUID  # a case manager the reporter excluded
    manager: uuid.UUID  # the involved person's manager (a case manager too)
    candidate: uuid.UUID  # the manager's manager (leadership, admin)
    reporter: uuid.UUID


class Events:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token

    async def send(self, event: dict[str, Any], expect: int = 200) -> httpx.Response:
        response = await self.client.post(
            EVENTS_URL,
            content=json.dumps(event),
            headers={**auth(self.token), "content-type": "application/cloudevents+json"},
        )
        assert response.status_code == expect, response.text
        return response

    async def person(
        self,
        org_id: uuid.UUID,
        person_id: uuid.UUID,
        *,
        roles: list[str],
        manager_id: uuid.UUID | None = None,
        type_: str = "upstander.person.created",
        **extra: Any,
    ) -> None:
        data = {
            "person_id": str(person_id),
            "org_id": str(org_id),
            "email": f"{person_id.hex[:8]}@demo.example",
            "name": f"Person {person_id.hex[:6]}",
            "title": "Field organiser",
            "roles": roles,
            "manager_id": str(manager_id) if manager_id else None,
            "is_leadership": False,
            "start_date": "2026-01-05",
            "location": "HQ",
            "language": "en",
            "active": True,
            **extra,
        }
        await self.send(cloud_event(type_, data, org_id=org_id, subject=f"person/{person_id}"))


def report_data(world: World, report_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "report_id": str(report_id),
        "org_id": str(world.org_id),
        "org_slug": "demo",
        "mode": "confidential",
        "submitted_at": SUBMITTED_AT,
        "language": "en",
        "categories": ["sexual_harassment"],
        "description": DESCRIPTION,
        "occurred_at": "2026-11-20",
        "location": "Field office",
        "people_involved": [
            {"person_id": str(world.involved), "name": None, "role": "subject"},
            {"person_id": None, "name": "A volunteer from canvassing", "role": "subject"},
        ],
        "witnesses": [{"person_id": None, "name": WITNESS}],
        "desired_outcome": "That it stops.",
        "excluded_person_ids": [str(world.excluded)],
        "reporter": {"name": "R. Porter", "contact": CONTACT},
        "attachments": [
            {
                "attachment_id": str(uuid.uuid5(report_id, "photo")),
                "filename": "photo-of-the-note.jpg",
                "content_type": "image/jpeg",
                "size": 1234,
            }
        ],
    }
    data.update(overrides)
    return data


def submitted(world: World, report_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return cloud_event(
        "upstander.report.submitted",
        report_data(world, report_id, **overrides),
        org_id=world.org_id,
        subject=f"report/{report_id}",
    )


@pytest.fixture
def events(client: httpx.AsyncClient, service_token: str) -> Events:
    return Events(client, service_token)


@pytest.fixture
async def world(events: Events) -> World:
    org_id = uuid.uuid4()
    w = World(org_id, *(uuid.uuid4() for _ in range(6)))
    org = {"org_id": str(org_id), "slug": "demo", "name": "Demo campaign", "active": True}
    await events.send(cloud_event("upstander.org.created", org, org_id=org_id))
    await events.person(org_id, w.candidate, roles=["admin"], is_leadership=True)
    await events.person(org_id, w.manager, roles=["case_manager"], manager_id=w.candidate)
    await events.person(org_id, w.involved, roles=["case_manager"], manager_id=w.manager)
    await events.person(org_id, w.excluded, roles=["case_manager"], manager_id=w.candidate)
    await events.person(org_id, w.handler, roles=["case_manager"], manager_id=w.candidate)
    await events.person(org_id, w.reporter, roles=["staff"], manager_id=w.manager)
    return w


def staff(mint: Any, world: World, person: uuid.UUID, roles: list[str] | None = None) -> dict:
    return auth(mint(org=world.org_id, roles=roles or ["case_manager"], sub=person))


def reporter_headers(mint: Any, org_id: uuid.UUID, report_id: uuid.UUID) -> dict[str, str]:
    return auth(
        mint(org=org_id, roles=[], sub=f"report:{report_id}", typ="reporter", report=report_id)
    )


async def cases_of(app: FastAPI, org_id: uuid.UUID) -> list[Case]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(Case).where(Case.org_id == org_id))).all())


async def outbox(app: FastAPI, type_: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(Outbox).where(Outbox.type == type_))).all()
        return [
            {"destination": r.destination, "subject": r.subject, **app.state.events.envelope(r)}
            for r in rows
        ]


async def open_from_report(events: Events, world: World) -> uuid.UUID:
    report_id = uuid.uuid4()
    await events.send(submitted(world, report_id))
    return report_id


# ----------------------------------------------------------------------------- opening


async def test_a_submitted_report_opens_one_case_with_legal_deadlines(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    report_id = uuid.uuid4()

    response = await events.send(submitted(world, report_id))

    assert response.json() == {"status": "processed"}
    listing = await client.get("/cases/v1/cases", headers=staff(mint, world, world.handler))
    [case] = listing.json()["items"]
    assert case["number"] == "DEMO-2026-0001"
    assert case["report_id"] == str(report_id)
    assert case["status"] == "new"
    assert case["categories"] == ["sexual_harassment"]
    assert case["reporter_mode"] == "confidential"
    assert case["reporter_person_id"] is None
    assert case["received_at"] == "2026-11-24T09:00:00Z"  # sent 09:30; the hour only
    assert case["acknowledge_by"] == "2026-12-01T09:00:00Z"  # + 7 days
    assert case["feedback_by"] == "2027-03-01T09:00:00Z"  # acknowledge_by + 3 months


async def test_the_same_event_delivered_twice_opens_one_case(
    app: FastAPI, events: Events, world: World
) -> None:
    event = submitted(world, uuid.uuid4())

    first = await events.send(event)
    again = await events.send(event)

    assert first.json() == {"status": "processed"}
    assert again.json() == {"status": "duplicate"}
    assert len(await cases_of(app, world.org_id)) == 1


async def test_two_events_for_one_report_open_one_case_and_announce_it_once(
    app: FastAPI, events: Events, world: World
) -> None:
    report_id = uuid.uuid4()

    await events.send(submitted(world, report_id))
    await events.send(submitted(world, report_id))  # another event id, same report

    [case] = await cases_of(app, world.org_id)
    assert case.number == "DEMO-2026-0001"
    assert len(await outbox(app, "upstander.case.opened")) == 1
    async with app.state.sessionmaker() as session:
        reports = await session.scalar(
            select(func.count()).select_from(CaseReport).where(CaseReport.case_id == case.id)
        )
        attachments = await session.scalar(
            select(func.count())
            .select_from(CaseAttachment)
            .where(CaseAttachment.case_id == case.id)
        )
    assert (reports, attachments) == (1, 1)


async def test_an_identified_report_keeps_the_reporters_directory_id(
    app: FastAPI, events: Events, world: World
) -> None:
    reporter = {"person_id": str(world.reporter)}
    await events.send(submitted(world, uuid.uuid4(), mode="identified", reporter=reporter))

    [case] = await cases_of(app, world.org_id)
    assert case.reporter_mode == "identified"
    assert case.reporter_person_id == world.reporter


async def test_the_report_is_sealed_under_the_cases_key(
    app: FastAPI, events: Events, world: World
) -> None:
    await open_from_report(events, world)

    [case] = await cases_of(app, world.org_id)
    async with app.state.sessionmaker() as session:
        report = await session.scalar(select(CaseReport).where(CaseReport.case_id == case.id))
        # The column as stored, without the decrypting type.
        raw = await session.scalar(
            select(type_coerce(CaseReport.content, LargeBinary)).where(
                CaseReport.case_id == case.id
            )
        )
    assert report is not None and report.content is not None
    assert report.content["description"] == DESCRIPTION
    assert report.content["witnesses"] == [{"person_id": None, "name": WITNESS, "role": None}]
    assert report.content["reporter"]["contact"] == CONTACT
    assert raw is not None
    assert bytes(raw)[1:17] == case.id.bytes  # the blob names its owner: the case
    assert DESCRIPTION.encode() not in bytes(raw)


async def test_report_content_and_names_never_reach_the_database_file(
    app: FastAPI, events: Events, world: World, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file's bytes")
    await open_from_report(events, world)
    async with app.state.engine.connect() as connection:
        await connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))

    path = Path(database_url.split("///", 1)[1])
    stored = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())

    assert len(await cases_of(app, world.org_id)) == 1
    assert b"Demo campaign" in stored  # plain columns are there: the bytes are the data
    for secret in (DESCRIPTION, WITNESS, CONTACT, "photo-of-the-note", "That it stops."):
        assert secret.encode() not in stored, secret
    # The directory's names and emails are sealed too.
    assert f"Person {world.involved.hex[:6]}".encode() not in stored
    assert f"{world.involved.hex[:8]}@demo.example".encode() not in stored


async def test_a_malformed_report_is_refused_without_echoing_it(
    app: FastAPI, events: Events, world: World
) -> None:
    event = submitted(world, uuid.uuid4(), people_involved=[{"person_id": DESCRIPTION}])

    response = await events.send(event, expect=400)

    assert DESCRIPTION not in response.text
    assert await cases_of(app, world.org_id) == []
    # Not recorded as received: the relay delivers it again once intake is fixed.
    again = await events.send(submitted(world, uuid.uuid4()))
    assert again.json() == {"status": "processed"}


async def test_a_report_whose_org_disagrees_with_its_envelope_is_refused(
    app: FastAPI, events: Events, world: World
) -> None:
    event = submitted(world, uuid.uuid4(), org_id=str(uuid.uuid4()))

    await events.send(event, expect=400)

    assert await cases_of(app, world.org_id) == []


@pytest.mark.parametrize("typ", ["staff", "reporter"])
async def test_only_services_deliver_events(
    client: httpx.AsyncClient, mint: Any, world: World, typ: str
) -> None:
    token = mint(org=world.org_id, roles=["admin"], typ=typ, report=uuid.uuid4())
    event = submitted(world, uuid.uuid4())

    response = await client.post(EVENTS_URL, json=event, headers=auth(token))

    assert response.status_code == 403


async def test_case_opened_is_written_to_the_outbox_with_the_restricted_people(
    app: FastAPI, events: Events, world: World
) -> None:
    await open_from_report(events, world)

    [case] = await cases_of(app, world.org_id)
    [row] = await outbox(app, "upstander.case.opened")
    assert row["destination"] == "notify"
    assert row["subject"] == f"case/{case.id}"
    assert row["orgid"] == str(world.org_id)
    assert row["data"] == {
        "case_id": str(case.id),
        "number": "DEMO-2026-0001",
        "routed_to": "case_managers",
        "restricted_person_ids": sorted(
            str(p) for p in (world.involved, world.excluded, world.manager, world.candidate)
        ),
    }


async def test_attachments_added_later_are_recorded_once(
    app: FastAPI, events: Events, world: World
) -> None:
    report_id = await open_from_report(events, world)
    attachment_id = uuid.uuid4()
    data = {
        "report_id": str(report_id),
        "org_id": str(world.org_id),
        "attachment_id": str(attachment_id),
        "filename": "screenshot.png",
        "content_type": "image/png",
        "size": 999,
    }
    subject = f"report/{report_id}"

    await events.send(
        cloud_event("upstander.report.attachment_added", data, org_id=world.org_id, subject=subject)
    )
    await events.send(
        cloud_event("upstander.report.attachment_added", data, org_id=world.org_id, subject=subject)
    )

    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(CaseAttachment))).all()
    added = [r for r in rows if r.attachment_id == attachment_id]
    assert len(rows) == 2
    assert [(a.filename, a.content_type, a.size) for a in added] == [
        ("screenshot.png", "image/png", 999)
    ]


async def test_an_attachment_before_its_case_is_retried_later(events: Events, world: World) -> None:
    data = {"report_id": str(uuid.uuid4()), "attachment_id": str(uuid.uuid4())}

    await events.send(
        cloud_event("upstander.report.attachment_added", data, org_id=world.org_id), expect=404
    )


# ----------------------------------------------------------------------------- visibility


async def test_the_excluded_and_the_involved_never_see_the_case_whatever_their_role(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    await open_from_report(events, world)
    [case] = await cases_of(app, world.org_id)

    for person in (world.excluded, world.involved):
        for roles in (["case_manager"], ["admin", "investigator", "reviewer"]):
            headers = staff(mint, world, person, roles)
            single = await client.get(f"/cases/v1/cases/{case.id}", headers=headers)
            listing = await client.get("/cases/v1/cases", headers=headers)
            messages = await client.get(f"/cases/v1/cases/{case.id}/messages", headers=headers)
            post = await client.post(
                f"/cases/v1/cases/{case.id}/messages", json={"body": "hi"}, headers=headers
            )
            assert single.status_code == 404
            assert listing.json()["items"] == []
            assert messages.status_code == 404
            assert post.status_code == 404

    other = staff(mint, world, world.handler)
    assert (await client.get(f"/cases/v1/cases/{case.id}", headers=other)).status_code == 200
    assert len((await client.get("/cases/v1/cases", headers=other)).json()["items"]) == 1


async def test_the_chain_above_an_involved_person_never_sees_the_case(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    await open_from_report(events, world)
    [case] = await cases_of(app, world.org_id)

    for person, roles in ((world.manager, ["case_manager"]), (world.candidate, ["admin"])):
        headers = staff(mint, world, person, roles)
        assert (await client.get(f"/cases/v1/cases/{case.id}", headers=headers)).status_code == 404
        assert (await client.get("/cases/v1/cases", headers=headers)).json()["items"] == []


async def test_a_new_manager_of_an_involved_person_is_excluded_too(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    await open_from_report(events, world)
    [case] = await cases_of(app, world.org_id)
    new_manager = uuid.uuid4()
    await events.person(world.org_id, new_manager, roles=["case_manager"])
    headers = staff(mint, world, new_manager)
    assert (await client.get(f"/cases/v1/cases/{case.id}", headers=headers)).status_code == 200

    await events.person(
        world.org_id,
        world.involved,
        roles=["case_manager"],
        manager_id=new_manager,
        type_="upstander.person.updated",
    )

    assert (await client.get(f"/cases/v1/cases/{case.id}", headers=headers)).status_code == 404
    old_manager = staff(mint, world, world.manager)  # stays excluded
    assert (await client.get(f"/cases/v1/cases/{case.id}", headers=old_manager)).status_code == 404


async def test_a_person_named_before_joining_the_directory_gets_their_chain_excluded(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    newcomer = uuid.uuid4()
    involved = [{"person_id": str(newcomer), "name": None, "role": "subject"}]
    await events.send(submitted(world, uuid.uuid4(), people_involved=involved))
    [case] = await cases_of(app, world.org_id)

    await events.person(world.org_id, newcomer, roles=["staff"], manager_id=world.handler)

    headers = staff(mint, world, world.handler)
    assert (await client.get(f"/cases/v1/cases/{case.id}", headers=headers)).status_code == 404


async def test_a_cycle_in_reporting_lines_ends_the_walk(
    app: FastAPI, events: Events, world: World
) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await events.person(world.org_id, a, roles=["staff"], manager_id=b)
    await events.person(world.org_id, b, roles=["staff"], manager_id=c)
    await events.person(world.org_id, c, roles=["staff"], manager_id=a)

    async with app.state.sessionmaker() as session:
        above = await managers_above(session, world.org_id, {a})

    assert above == {a, b, c}


async def test_restrictions_record_why(app: FastAPI, events: Events, world: World) -> None:
    await open_from_report(events, world)

    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(CaseRestriction))).all()

    assert {(r.person_id, r.reason) for r in rows} == {
        (world.involved, "involved"),
        (world.excluded, "excluded"),
        (world.manager, "chain"),
        (world.candidate, "chain"),
    }


# ----------------------------------------------------------------------------- messages


async def test_handler_and_reporter_write_to_each_other(
    app: FastAPI,
    client: httpx.AsyncClient,
    events: Events,
    world: World,
    mint: Any,
    clock: FrozenClock,
) -> None:
    report_id = await open_from_report(events, world)
    [case] = await cases_of(app, world.org_id)
    handler = staff(mint, world, world.handler)
    reporter = reporter_headers(mint, world.org_id, report_id)

    asked = await client.post(
        f"/cases/v1/cases/{case.id}/messages",
        json={"body": "Thank you. When did it happen?"},
        headers=handler,
    )
    clock.advance(timedelta(minutes=5))
    answered = await client.post(
        "/cases/v1/reporter/messages", json={"body": "On the 20th."}, headers=reporter
    )

    assert asked.status_code == 201, asked.text
    assert asked.json()["author"] == "handler"
    assert asked.json()["author_person_id"] == str(world.handler)
    assert answered.status_code == 201, answered.text
    assert answered.json()["author"] == "reporter"

    seen_by_reporter = await client.get("/cases/v1/reporter/messages", headers=reporter)
    items = seen_by_reporter.json()["items"]
    assert [(m["author"], m["body"]) for m in items] == [
        ("handler", "Thank you. When did it happen?"),
        ("reporter", "On the 20th."),
    ]
    assert all(set(m) == {"id", "author", "body", "created_at"} for m in items)
    assert str(world.handler) not in seen_by_reporter.text

    seen_by_handler = await client.get(f"/cases/v1/cases/{case.id}/messages", headers=handler)
    assert [(m["author"], m["body"]) for m in seen_by_handler.json()["items"]] == [
        ("handler", "Thank you. When did it happen?"),
        ("reporter", "On the 20th."),
    ]

    posted = await outbox(app, "upstander.case.message_posted")
    assert [row["data"]["author"] for row in posted] == ["handler", "reporter"]
    restricted = sorted(
        str(p) for p in (world.involved, world.excluded, world.manager, world.candidate)
    )
    assert all(
        row["data"] == {**row["data"], "case_id": str(case.id), "number": case.number}
        and row["data"]["restricted_person_ids"] == restricted
        for row in posted
    )
    handler_posted, reporter_posted = posted
    # A confidential reporter who gave an email is told of the handler's reply (and only of
    # that): the notice carries where to send it, never what was said.
    assert handler_posted["data"]["reporter_notice"] == {
        "channel": "email",
        "address": CONTACT,
        "language": "en",
    }
    assert set(reporter_posted["data"]) == {"case_id", "number", "author", "restricted_person_ids"}
    async with app.state.sessionmaker() as session:
        sealed = (
            await session.scalars(
                select(Outbox).where(Outbox.type == "upstander.case.message_posted")
            )
        ).all()
    assert all(row.sealed_with and CONTACT.encode() not in (row.payload or b"") for row in sealed)


async def test_reporter_messages_page_oldest_first(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any, clock: Any
) -> None:
    report_id = await open_from_report(events, world)
    reporter = reporter_headers(mint, world.org_id, report_id)
    for n in range(5):
        await client.post("/cases/v1/reporter/messages", json={"body": f"m{n}"}, headers=reporter)
        clock.advance(timedelta(seconds=1))

    bodies: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/cases/v1/reporter/messages", params=params, headers=reporter)
        ).json()
        bodies += [m["body"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert bodies == ["m0", "m1", "m2", "m3", "m4"]


async def test_the_reporter_sees_only_status_and_deadlines_of_their_case(
    client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    report_id = await open_from_report(events, world)

    response = await client.get(
        "/cases/v1/reporter/case", headers=reporter_headers(mint, world.org_id, report_id)
    )

    assert response.status_code == 200
    assert response.json() == {
        "number": "DEMO-2026-0001",
        "status": "new",
        "received_at": "2026-11-24T09:00:00Z",  # the hour only
        "acknowledge_by": "2026-12-01T09:00:00Z",
        "feedback_by": "2027-03-01T09:00:00Z",
        "acknowledged_at": None,
        "updated_at": response.json()["updated_at"],
    }


async def test_another_reports_token_cannot_reach_this_case(
    client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    report_id = await open_from_report(events, world)
    other_report = await open_from_report(events, world)  # a real case, just not this one
    await client.post(
        "/cases/v1/reporter/messages",
        json={"body": "for case one"},
        headers=reporter_headers(mint, world.org_id, report_id),
    )

    other = reporter_headers(mint, world.org_id, other_report)
    own_messages = await client.get("/cases/v1/reporter/messages", headers=other)
    assert own_messages.json()["items"] == []
    own_case = await client.get("/cases/v1/reporter/case", headers=other)
    assert own_case.json()["number"] == "DEMO-2026-0002"

    for headers in (
        reporter_headers(mint, world.org_id, uuid.uuid4()),  # no case for that report
        reporter_headers(mint, uuid.uuid4(), report_id),  # the right report, another org
    ):
        assert (await client.get("/cases/v1/reporter/case", headers=headers)).status_code == 404
        assert (await client.get("/cases/v1/reporter/messages", headers=headers)).status_code == 404
        posted = await client.post(
            "/cases/v1/reporter/messages", json={"body": "hello?"}, headers=headers
        )
        assert posted.status_code == 404


async def test_staff_tokens_cannot_use_the_reporter_channel(
    client: httpx.AsyncClient, world: World, mint: Any
) -> None:
    response = await client.get(
        "/cases/v1/reporter/case", headers=staff(mint, world, world.handler)
    )

    assert response.status_code == 403


@pytest.mark.parametrize("body", ["", "   ", "x" * 10_001])
async def test_message_bodies_are_bounded(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any, body: str
) -> None:
    report_id = await open_from_report(events, world)
    [case] = await cases_of(app, world.org_id)

    by_handler = await client.post(
        f"/cases/v1/cases/{case.id}/messages",
        json={"body": body},
        headers=staff(mint, world, world.handler),
    )
    by_reporter = await client.post(
        "/cases/v1/reporter/messages",
        json={"body": body},
        headers=reporter_headers(mint, world.org_id, report_id),
    )

    assert by_handler.status_code == 422
    assert by_reporter.status_code == 422


async def test_messages_are_sealed_under_the_cases_key(
    app: FastAPI, client: httpx.AsyncClient, events: Events, world: World, mint: Any
) -> None:
    report_id = await open_from_report(events, world)
    await client.post(
        "/cases/v1/reporter/messages",
        json={"body": "Kumquat-marmalade detail"},
        headers=reporter_headers(mint, world.org_id, report_id),
    )

    async with app.state.sessionmaker() as session:
        raw = await session.scalar(select(type_coerce(Message.body, LargeBinary)))

    assert b"Kumquat" not in bytes(raw)


async def test_received_at_falls_back_to_the_event_time(
    app: FastAPI, events: Events, world: World
) -> None:
    event = submitted(world, uuid.uuid4(), submitted_at=None)
    event["time"] = "2026-11-23T00:00:00+00:00"

    await events.send(event)

    [case] = await cases_of(app, world.org_id)
    assert case.received_at == datetime(2026, 11, 23, tzinfo=UTC)
    assert case.feedback_by == datetime(2027, 2, 28, tzinfo=UTC)
