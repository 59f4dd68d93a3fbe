"""Case notices: the right people hear that a case needs attention, in the inbox and by email,
in their language, once, and without a word of the case's content."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from notify_support import free_port
from sqlalchemy import literal_column, select

from upstander.kit.clock import FrozenClock
from upstander.notify.events import on_case_notice
from upstander.notify.models import Channel, Delivery, DeliveryStatus, InboxMessage, Person

CONTENT = ["NARRATIVE-7f3a", "CATEGORY-sexual-harassment-91", "ACCUSED-Jonah-Quill"]


async def person(
    events: Any,
    org_id: uuid.UUID,
    roles: list[str],
    *,
    language: str = "en",
    name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    person_id = uuid.uuid4()
    data = {
        "person_id": str(person_id),
        "org_id": str(org_id),
        "email": f"p-{person_id.hex[:12]}@example.org",
        "name": name or f"Person-{person_id.hex[:6]}",
        "title": "Organiser",
        "roles": roles,
        "manager_id": None,
        "is_leadership": False,
        "language": language,
        "active": True,
        **extra,
    }
    await events.publish("upstander.person.created", data, org_id=org_id, source="/gateway")
    return data


def case_opened(org_id: uuid.UUID, number: str = "DEMO-2026-0001", **data: Any) -> dict[str, Any]:
    return {
        "case_id": str(uuid.uuid4()),
        "number": number,
        "routed_to": "case_managers",
        "restricted_person_ids": [],
        **data,
    }


async def inbox_of(app: Any, person: dict[str, Any]) -> list[InboxMessage]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(InboxMessage).where(InboxMessage.person_id == uuid.UUID(person["person_id"]))
        )
        return list(rows)


async def deliveries_for(app: Any, person: dict[str, Any]) -> list[Delivery]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.person_id == uuid.UUID(person["person_id"]))
        )
        return list(rows)


def mail_files(app: Any, to: str) -> list[EmailMessage]:
    found = []
    for path in sorted(Path(app.state.settings.mail_dir).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == to:
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def test_person_events_keep_the_directory(app, events):
    org = uuid.uuid4()
    someone = await person(events, org, ["staff"], language="es-MX")
    await events.publish(
        "upstander.person.updated",
        {**someone, "roles": ["case_manager"], "email": "new@example.org"},
        org_id=org,
    )
    async with app.state.sessionmaker() as session:
        row = await session.get(Person, uuid.UUID(someone["person_id"]))
        assert row is not None
        assert (row.email, row.roles, row.language, row.active) == (
            "new@example.org",
            ["case_manager"],
            "es",
            True,
        )
    await events.publish(
        "upstander.person.deactivated",
        {"person_id": someone["person_id"], "org_id": str(org)},
        org_id=org,
    )
    async with app.state.sessionmaker() as session:
        row = await session.get(Person, uuid.UUID(someone["person_id"]))
        assert row is not None and row.active is False
        # contact details are sealed at rest, never stored in the clear
        stored = await session.scalar(
            select(literal_column("email")).select_from(Person).where(Person.id == row.id)
        )
    assert isinstance(stored, bytes) and b"new@example.org" not in stored


async def test_case_opened_reaches_case_managers_in_their_language_over_smtp(
    app, events, smtp_server, use_smtp
):
    controller, collector = smtp_server
    use_smtp(controller.port)
    org = uuid.uuid4()
    english = await person(events, org, ["case_manager"], name="Ada Lovelace")
    spanish = await person(
        events, org, ["case_manager", "investigator"], language="es", name="Rosa Parks"
    )
    bystander = await person(events, org, ["staff"])
    data = case_opened(org, description=CONTENT[0], categories=[CONTENT[1]], accused=CONTENT[2])
    await events.publish("upstander.case.opened", data, org_id=org)
    assert await app.state.worker.run_once() == 2

    received = {tuple(rcpt): raw for rcpt, raw in collector.messages}
    assert set(received) == {(english["email"],), (spanish["email"],)}
    for who, expected in ((english, "A new case"), (spanish, "Un caso nuevo")):
        raw = received[(who["email"],)]
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        assert message.get_content_type() == "multipart/alternative"
        assert expected in message["Subject"] and "DEMO-2026-0001" in message["Subject"]
        text, html = parts(message)
        link = f"http://127.0.0.1:8000/cases/{data['case_id']}"
        assert "DEMO-2026-0001" in text and link in text and link in html
        decoded = raw.decode() + text + html
        for secret in [*CONTENT, english["name"], spanish["name"], "Ada", "Rosa"]:
            assert secret not in decoded
    assert (
        "Se ha abierto un caso nuevo"
        in parts(
            email.message_from_bytes(received[(spanish["email"],)], policy=email.policy.default)  # type: ignore[arg-type]
        )[0]
    )
    (inbox,) = await inbox_of(app, english)
    assert inbox.kind == "case.opened" and "DEMO-2026-0001" in inbox.subject
    assert inbox.link == f"http://127.0.0.1:8000/cases/{data['case_id']}"
    assert not any(s in inbox.subject + inbox.body for s in CONTENT)
    assert await inbox_of(app, bystander) == []
    assert [d.status for d in await deliveries_for(app, english) if d.channel == Channel.EMAIL] == [
        DeliveryStatus.SENT
    ]


async def test_dev_mode_writes_eml_files(app, events):
    org = uuid.uuid4()
    manager = await person(events, org, ["case_manager"])
    await events.publish(
        "upstander.case.opened", case_opened(org, number="DEMO-2026-0042"), org_id=org
    )
    await app.state.worker.run_once()
    (message,) = mail_files(app, manager["email"])
    assert "DEMO-2026-0042" in message["Subject"]
    assert manager["name"] not in message.as_string()


async def test_restricted_people_hear_nothing(app, events):
    org = uuid.uuid4()
    allowed = await person(events, org, ["case_manager"])
    restricted = await person(events, org, ["case_manager"])
    await events.publish(
        "upstander.case.opened",
        case_opened(org, restricted_person_ids=[restricted["person_id"]]),
        org_id=org,
    )
    await app.state.worker.run_once()
    assert len(await inbox_of(app, allowed)) == 1
    assert await inbox_of(app, restricted) == []
    assert await deliveries_for(app, restricted) == []
    assert mail_files(app, restricted["email"]) == []
    assert len(mail_files(app, allowed["email"])) == 1


async def test_cases_routed_to_reviewers_reach_only_reviewers_also_for_later_messages(app, events):
    org = uuid.uuid4()
    manager = await person(events, org, ["case_manager"])
    reviewer = await person(events, org, ["reviewer"])
    opened = case_opened(org, routed_to="reviewers")
    await events.publish("upstander.case.opened", opened, org_id=org)
    await events.publish(
        "upstander.case.message_posted",
        {
            "case_id": opened["case_id"],
            "number": opened["number"],
            "author": "reporter",
            "restricted_person_ids": [],
        },
        org_id=org,
    )
    assert await inbox_of(app, manager) == []
    kinds = sorted(m.kind for m in await inbox_of(app, reviewer))
    assert kinds == ["case.message_posted", "case.opened"]
    posted = next(m for m in await inbox_of(app, reviewer) if m.kind == "case.message_posted")
    assert posted.body == "A reporter sent a new message on case DEMO-2026-0001."


async def test_a_handlers_message_tells_no_one(app, events):
    org = uuid.uuid4()
    manager = await person(events, org, ["case_manager"])
    await events.publish(
        "upstander.case.message_posted",
        {
            "case_id": str(uuid.uuid4()),
            "number": "DEMO-2026-0003",
            "author": "handler",
            "restricted_person_ids": [],
        },
        org_id=org,
    )
    assert await inbox_of(app, manager) == []


async def test_the_same_event_twice_tells_each_person_once(app, events):
    org = uuid.uuid4()
    manager = await person(events, org, ["case_manager"])
    envelope = events.envelope("upstander.case.opened", case_opened(org), org_id=org)
    assert await events.send(envelope) == "processed"
    assert await events.send(envelope) == "duplicate"
    # and past the kit's inbox too: the deliveries table refuses a second notice
    from upstander.kit.events import CloudEvent, EventContext

    async with app.state.sessionmaker() as session:
        context = EventContext.for_app(app, session)
        await on_case_notice(CloudEvent.model_validate(envelope), context)
        await session.commit()
    await app.state.worker.run_once()
    await app.state.worker.run_once()
    assert len(await inbox_of(app, manager)) == 1
    assert len(mail_files(app, manager["email"])) == 1


async def test_a_mail_server_outage_delays_the_email_but_does_not_lose_it(
    app, events, smtp_server, use_smtp
):
    controller, collector = smtp_server
    clock = FrozenClock(datetime.now(UTC))
    real_clock, app.state.clock = app.state.clock, clock
    try:
        use_smtp(free_port())  # nothing listens there
        org = uuid.uuid4()
        manager = await person(events, org, ["case_manager"])
        await events.publish("upstander.case.opened", case_opened(org), org_id=org)
        await app.state.worker.run_once()
        (email_row,) = [d for d in await deliveries_for(app, manager) if d.channel == Channel.EMAIL]
        assert email_row.status == DeliveryStatus.FAILED and email_row.attempts == 1
        assert email_row.next_attempt_at == clock.now() + timedelta(minutes=1)
        assert "example.org" not in (email_row.error or "")

        use_smtp(controller.port)
        await app.state.worker.run_once()  # not due yet
        assert collector.messages == []
        clock.advance(timedelta(minutes=1))
        await app.state.worker.run_once()
        assert [rcpt for rcpt, _ in collector.messages] == [[manager["email"]]]
        (email_row,) = [d for d in await deliveries_for(app, manager) if d.channel == Channel.EMAIL]
        assert email_row.status == DeliveryStatus.SENT and email_row.attempts == 2
    finally:
        app.state.clock = real_clock
