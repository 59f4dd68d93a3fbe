"""Event payloads are contracts: one model per event type and version
(`upstander.kit.contracts`), the JSON Schemas in docs/events/schemas/ generated from them, the
catalogue in docs/events.md naming the same types, and every payload the platform really
publishes valid against its model (the whole platform driven through one story: people,
a report with a file, its case, messages, an allegation, deadlines, training reminders)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import event_schemas
import pytest
from harness import Platform, running_platform
from sqlalchemy import JSON, Boolean, Date, String, Uuid, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from upstander.kit.contracts import (
    CaseMessagePosted,
    InvalidEvent,
    PersonDeactivated,
    PersonEvent,
    ReportSubmitted,
    contract_for,
    event_types,
    parse_data,
    parse_event,
    version_of,
)
from upstander.kit.db import UTCDateTime
from upstander.kit.directory import upsert_person
from upstander.kit.events import CloudEvent, PermanentEventError, is_permanent

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "docs" / "events.md"
PASSWORD = "a-long-password-1"
HANDLER = "case_manager@demo.example"
ADMIN = "admin@demo.example"
TRAINER = "trainer@demo.example"


# ----------------------------------------------------------------------------- docs and schemas


def documented_types(markdown: str) -> set[str]:
    """The event types of the catalogue table in docs/events.md (first column; `.updated`
    after `upstander.org.created` is `upstander.org.updated`)."""
    found: set[str] = set()
    lines = markdown.splitlines()
    start = lines.index("| type | from | to | data |")
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        first_cell = line.split("|")[1]
        prefix = ""
        for name in re.findall(r"`([^`]+)`", first_cell):
            if name.startswith("upstander."):
                prefix = name.rsplit(".", 1)[0]
                found.add(name)
            elif name.startswith(".") and prefix:
                found.add(prefix + name)
    return found


def test_the_committed_json_schemas_are_the_ones_the_models_generate() -> None:
    assert event_schemas.drift() == []


def test_every_event_type_in_the_catalogue_has_a_model_and_every_model_is_in_it() -> None:
    documented = documented_types(CATALOGUE.read_text())
    assert documented == set(event_types())


def test_every_schema_names_its_type_and_version_and_forbids_unknown_fields() -> None:
    for name, content in event_schemas.generate().items():
        assert f'"$id": "https://upstander.dev/events/schemas/{name}"' in content
        assert '"additionalProperties": false' in content, name


# ----------------------------------------------------------------------------- the two directions


def test_a_publisher_cannot_send_a_field_the_contract_does_not_name() -> None:
    with pytest.raises(ValueError, match="extra"):
        CaseMessagePosted(
            case_id=uuid.uuid4(), number="DEMO-2026-0001", author="handler", body="content"
        )


def test_a_consumer_ignores_a_field_a_newer_publisher_added() -> None:
    data = {"case_id": str(uuid.uuid4()), "number": "N-1", "author": "system", "mood": "new"}
    parsed = parse_data("upstander.case.message_posted", data)
    assert isinstance(parsed, CaseMessagePosted) and parsed.author == "system"


def test_broken_data_is_a_permanent_failure_naming_fields_never_values() -> None:
    event = CloudEvent.model_validate(
        {
            "id": str(uuid.uuid4()),
            "source": "/intake",
            "type": "upstander.report.submitted",
            "time": "2026-11-27T16:00:00+00:00",
            "data": {"report_id": "secret-words", "description": 7},
        }
    )
    with pytest.raises(InvalidEvent) as raised:
        parse_event(event, ReportSubmitted)
    assert isinstance(raised.value, PermanentEventError) and is_permanent(raised.value)
    assert raised.value.extra["fields"] == ["description", "report_id"]
    assert "secret-words" not in str(raised.value)


def test_an_orgid_that_disagrees_with_the_data_or_an_unknown_version_is_refused() -> None:
    person = {"person_id": str(uuid.uuid4()), "org_id": str(uuid.uuid4())}
    envelope = {
        "id": str(uuid.uuid4()),
        "source": "/gateway",
        "type": "upstander.person.updated",
        "time": "2026-11-27T16:00:00+00:00",
        "data": person,
    }
    with pytest.raises(InvalidEvent):
        parse_event(CloudEvent.model_validate({**envelope, "orgid": str(uuid.uuid4())}))
    with pytest.raises(InvalidEvent):
        parse_event(
            CloudEvent.model_validate(
                {**envelope, "dataschema": "https://upstander.dev/events/schemas/x.v1.json"}
            )
        )
    filled = parse_event(
        CloudEvent.model_validate({**envelope, "orgid": person["org_id"], "data": person}),
        PersonEvent,
    )
    assert (
        str(filled.org_id) == person["org_id"]
        and version_of(CloudEvent.model_validate(envelope)) == 1
    )


def test_the_report_payload_is_one_model_for_its_publisher_and_its_consumers() -> None:
    from upstander.cases import events as cases_events
    from upstander.cases.cases import schemas as cases_schemas
    from upstander.intake.reports import service as intake_reports
    from upstander.notify import notices as notify_notices

    # cases reads the very model intake writes with...
    assert cases_schemas.ReportSubmitted is ReportSubmitted
    assert cases_events.ReportSubmitted is ReportSubmitted
    # ...and intake's data is that model's own dump, byte for byte.
    report = SimpleNamespace(
        id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        mode="confidential",
        submitted_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
    )
    content = {
        "language": "es",
        "categories": ["sexual_harassment"],
        "description": "What happened",
        "occurred_at": "2026-11-20",
        "location": None,
        "people_involved": [{"person_id": str(uuid.uuid4()), "name": None, "role": "subject"}],
        "witnesses": [{"person_id": None, "name": "A volunteer"}],
        "desired_outcome": None,
        "excluded_person_ids": [],
        "reporter": {"name": "R. Porter", "contact": "r@example.net"},
    }
    data = intake_reports.submitted_event_data(report, content, "demo", [])  # type: ignore[arg-type]
    parsed = ReportSubmitted.model_validate(data)
    assert parsed.model_dump(mode="json") == data
    assert data["reporter"] == {"name": "R. Porter", "contact": "r@example.net"}
    # The one piece of the report notify ever handles (the confidential reporter's address,
    # in a handler's message) is the message contract cases publishes.
    assert notify_notices.CaseMessagePosted is CaseMessagePosted


# ----------------------------------------------------------------------------- the directory


class DirectoryBase(DeclarativeBase):
    pass


class ProjectedPerson(DirectoryBase):
    """A service's people table, as small as one could be: the kit maps what it has."""

    __tablename__ = "people"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str | None] = mapped_column(String(10), nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def test_one_directory_projection_serves_cases_notify_training_and_intake() -> None:
    import upstander.cases.directory.service as cases_directory
    import upstander.intake.directory.service as intake_directory
    import upstander.notify.directory.service as notify_directory
    import upstander.training.people.service as training_people
    from upstander.kit import directory

    for module in (cases_directory, notify_directory, training_people, intake_directory):
        assert module.directory is directory, module.__name__


async def test_the_projection_applies_what_an_event_carries_and_ignores_what_it_cannot(
    tmp_path: Path,
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'directory.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(DirectoryBase.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    org, person_id = uuid.uuid4(), uuid.uuid4()
    t0 = datetime(2026, 11, 24, 9, tzinfo=UTC)

    def person(type_: str, **data: Any) -> PersonEvent:
        parsed = parse_data(type_, {"person_id": str(person_id), **data}, org_id=org)
        assert isinstance(parsed, PersonEvent)
        return parsed

    async with sessions() as session:
        created = await upsert_person(
            session,
            ProjectedPerson,
            person("upstander.person.created", name="A very long name", roles=["b", "a", "b"]),
            at=t0,
        )
        assert created is not None and created.created
        row = created.person
        assert (row.name, row.roles, row.active) == ("A very lon", ["a", "b"], True)
        # Only the fields an event carries apply; the person as their own manager is no one's.
        updated = await upsert_person(
            session,
            ProjectedPerson,
            person("upstander.person.updated", manager_id=str(person_id)),
            at=t0 + timedelta(minutes=1),
        )
        assert updated is not None and (row.name, row.manager_id) == ("A very lon", None)
        # Older than what was applied: nothing.
        assert (
            await upsert_person(
                session, ProjectedPerson, person("upstander.person.updated", name="Old"), at=t0
            )
            is None
        )
        # Deactivated means inactive, whatever the data says.
        gone = await upsert_person(
            session,
            ProjectedPerson,
            person("upstander.person.deactivated", active=True),
            at=t0 + timedelta(minutes=2),
        )
        assert isinstance(person("upstander.person.deactivated"), PersonDeactivated)
        assert gone is not None and row.active is False
        # Another organisation claiming the person: ignored.
        moved = parse_data(
            "upstander.person.updated",
            {"person_id": str(person_id), "org_id": str(uuid.uuid4()), "name": "Thief"},
        )
        assert isinstance(moved, PersonEvent)
        assert (
            await upsert_person(session, ProjectedPerson, moved, at=t0 + timedelta(hours=1)) is None
        )
        assert row.name == "A very lon" and row.org_id == org
        # No organisation at all: a permanent failure, never a retry.
        orphan = parse_data("upstander.person.updated", {"person_id": str(uuid.uuid4())})
        assert isinstance(orphan, PersonEvent)
        with pytest.raises(InvalidEvent):
            await upsert_person(session, ProjectedPerson, orphan, at=t0)
        # Malformed: refused before any projection sees it.
        with pytest.raises(InvalidEvent):
            person("upstander.person.updated", start_date="someday")
    await engine.dispose()


# ----------------------------------------------------------------------------- a real flow


Captured = dict[uuid.UUID, dict[str, Any]]


async def capture(platform: Platform, seen: Captured) -> None:
    """Every event still readable in every app's outbox, as its consumers would receive it
    (sealed payloads are erased once delivered: call this before each drain)."""
    for app in platform.apps.values():
        bus = app.state.events
        async with app.state.sessionmaker() as session:
            rows = await session.scalars(select(bus.outbox).where(bus.outbox.payload.is_not(None)))
            for row in rows:
                seen.setdefault(row.event_id, bus.envelope(row))


async def drain(platform: Platform, seen: Captured) -> None:
    await capture(platform, seen)
    await platform.drain()
    await capture(platform, seen)


async def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()) if response.content else {}


async def people_by_email(platform: Platform) -> dict[str, str]:
    admin = await platform.auth(ADMIN)
    listing = await ok(
        await platform.gateway.get("/identity/v1/people", params={"limit": 200}, headers=admin),
        200,
    )
    return {p["email"]: p["id"] for p in listing["items"]}


async def story(platform: Platform, seen: Captured) -> None:
    """People, a confidential report with a file, its case handled and an allegation, then
    deadlines and training reminders as time passes."""
    gateway = platform.gateway
    admin, handler = await platform.auth(ADMIN), await platform.auth(HANDLER)
    trainer = await platform.auth(TRAINER)
    await capture(platform, seen)  # the bootstrap's org and people

    # The directory changes: an org renamed, a person created, updated, deactivated.
    await ok(
        await gateway.patch(
            "/identity/v1/orgs/current", json={"name": "Demo Campaign 2026"}, headers=admin
        ),
        200,
    )
    temp = await ok(
        await gateway.post(
            "/identity/v1/people",
            json={
                "email": f"temp-{uuid.uuid4().hex[:6]}@demo.example",
                "name": "Temp Staffer",
                "roles": ["staff"],
                "password": PASSWORD,
            },
            headers=admin,
        )
    )
    await ok(
        await gateway.patch(
            f"/identity/v1/people/{temp['id']}",
            json={"title": "Canvasser", "roles": ["staff", "investigator"]},
            headers=admin,
        ),
        200,
    )
    deleted = await gateway.delete(f"/identity/v1/people/{temp['id']}", headers=admin)
    assert deleted.status_code in (200, 204), deleted.text
    await drain(platform, seen)
    ids = await people_by_email(platform)

    # A confidential report, and a file its reporter adds later.
    filed = await ok(
        await gateway.post(
            "/intake/v1/reports",
            json={
                "org": "demo",
                "mode": "confidential",
                "description": "It happened after the rally.",
                "categories": ["sexual_harassment"],
                "occurred_at": "2026-11-20",
                "witnesses": [{"name": "A volunteer"}],
                "reporter": {"name": "Jordan Vega", "contact": "jordan.vega@example.org"},
            },
        )
    )
    receipt = await ok(
        await gateway.post(
            "/auth/receipt", json={"org": "demo", "receipt_code": filed["receipt_code"]}
        ),
        200,
    )
    reporter = {"authorization": f"Bearer {receipt['access_token']}"}
    await ok(
        await gateway.post(
            "/intake/v1/reporter/attachments",
            files={"file": ("note.txt", b"what I wrote down", "text/plain")},
            headers=reporter,
        )
    )
    await drain(platform, seen)

    listing = await ok(await gateway.get("/cases/v1/cases?limit=200", headers=handler), 200)
    (case,) = [c for c in listing["items"] if c["report_id"] == filed["report_id"]]
    url = f"/cases/v1/cases/{case['id']}"

    # Handled: a message each way, a transition, an assignment, a corrective action due soon.
    await ok(await gateway.post(f"{url}/messages", json={"body": "Thank you."}, headers=handler))
    await ok(
        await gateway.post(
            "/cases/v1/reporter/messages", json={"body": "Last Tuesday."}, headers=reporter
        )
    )
    await ok(await gateway.post(f"{url}/transitions", json={"to": "triage"}, headers=handler))
    await ok(
        await gateway.post(
            f"{url}/assignments",
            json={"person_id": ids["investigator@demo.example"], "role": "investigator"},
            headers=admin,
        )
    )
    await ok(
        await gateway.post(
            f"{url}/corrective-actions",
            json={
                "description": "Supervisor training",
                "owner_person_id": ids[HANDLER],
                "due_at": (platform.clock.now() + timedelta(hours=1)).isoformat(),
            },
            headers=handler,
        )
    )
    # An allegation names a staffer (hidden from them and their chain) and leadership
    # (rerouted to reviewers).
    await ok(
        await gateway.post(
            f"{url}/allegations",
            json={
                "category": "sexual_harassment",
                "description": "Unwelcome comments in the van.",
                "subject_person_ids": [ids["staff@demo.example"], ids["leader@demo.example"]],
            },
            headers=handler,
        )
    )

    # Training: a course everyone must take within 30 days, a policy to acknowledge.
    course = await ok(
        await gateway.post(
            "/training/v1/courses",
            json={
                "title": "Bystander intervention",
                "kind": "bystander_intervention",
                "duration_minutes": 60,
                "interactive": True,
                "activity_ids": [f"https://lms.example.org/xapi/{uuid.uuid4().hex}"],
            },
            headers=trainer,
        )
    )
    await ok(
        await gateway.post(
            "/training/v1/requirements",
            json={
                "course_id": course["id"],
                "name": "Annual",
                "audience": "non_supervisors",
                "due_within_days": 30,
                "recurrence_months": 12,
            },
            headers=trainer,
        )
    )
    policy = await ok(
        await gateway.post("/training/v1/policies", json={"title": "Respect"}, headers=trainer)
    )
    await ok(
        await gateway.post(
            f"/training/v1/policies/{policy['id']}/versions",
            json={"body": "Be kind.", "due_days": 14},
            headers=trainer,
        )
    )
    # Acknowledged by the trainer (`policy.acknowledged`).
    await ok(
        await gateway.post(
            f"/training/v1/policies/{policy['id']}/versions/1/acknowledge", headers=trainer
        )
    )
    # A completion recorded by hand (`training.completed`).
    await ok(
        await gateway.post(
            "/training/v1/completions",
            json={
                "person_id": ids["investigator@demo.example"],
                "course_id": course["id"],
                "completed_at": platform.clock.now().isoformat(),
            },
            headers=trainer,
        )
    )
    await drain(platform, seen)

    # Time passes: the deadline scheduler and the reminders run (their events are read from
    # the outboxes; tokens minted earlier expire, so nothing is delivered any more).
    start = platform.clock.now()
    for days in (0, 6, 8, 20, 31):
        platform.clock.set(start + timedelta(days=days, minutes=5))
        await platform.apps["cases"].state.deadlines.run_once()
        await platform.apps["training"].state.reminders.run_once()
        await capture(platform, seen)


def invalid(envelope: Mapping[str, Any]) -> str | None:
    """Why an event as published breaks its contract (publisher's strictness: no unknown
    field), or None."""
    event = CloudEvent.model_validate(envelope)
    model = contract_for(event.type, version_of(event))
    if model is None:
        return f"{event.type}: no contract"
    try:
        model.model_validate(event.data)  # extra="forbid": what a publisher may write
        parse_event(event)  # and what every consumer reads, envelope checks included
    except Exception as error:
        return f"{event.type}: {error}"
    return None


async def test_every_payload_the_platform_publishes_in_a_real_flow_follows_its_contract(
    tmp_path: Path,
) -> None:
    seen: Captured = {}
    async with running_platform(tmp_path) as platform:
        await story(platform, seen)
    failures = sorted(filter(None, (invalid(envelope) for envelope in seen.values())))
    assert failures == []
    published = {envelope["type"] for envelope in seen.values()}
    # Every contract was exercised by a real publisher in the story.
    assert published == set(event_types()), set(event_types()) - published
