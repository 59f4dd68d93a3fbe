"""Reminder digests (one email per person per day) and the notice to a confidential reporter
(one fixed sentence; their address is never kept)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify_support import free_port
from sqlalchemy import select
from test_notices import deliveries_for, inbox_of, mail_files, person

from upstander.kit.clock import FrozenClock
from upstander.notify.models import Channel, Delivery, DeliveryStatus, InboxMessage, Outbox

DUE = "2026-03-16T10:00:00+00:00"
REMINDERS = [
    # Whole payloads, as training publishes them (notify reads them through the contracts).
    (
        "upstander.training.due_soon",
        {"course_id": str(uuid.uuid4()), "requirement_id": str(uuid.uuid4()), "due_at": DUE},
    ),
    (
        "upstander.training.overdue",
        {"course_id": str(uuid.uuid4()), "requirement_id": str(uuid.uuid4()), "due_at": DUE},
    ),
    (
        "upstander.policy.acknowledgment_due",
        {"policy_id": str(uuid.uuid4()), "policy_version": 1, "due_at": DUE},
    ),
]
SENTENCE = "You have a new message about your report. Sign in with your receipt code to read it."


@pytest.fixture
def clock(app: Any) -> Iterator[FrozenClock]:
    frozen = FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    real, app.state.clock = app.state.clock, frozen
    yield frozen
    app.state.clock = real


async def remind(events: Any, org: uuid.UUID, who: dict[str, Any]) -> None:
    for event_type, data in REMINDERS:
        await events.publish(
            event_type, {"person_id": who["person_id"], **data}, org_id=org, source="/training"
        )


async def test_reminders_make_one_digest_email_a_day_and_one_inbox_message_each(app, events, clock):
    org = uuid.uuid4()
    learner = await person(events, org, ["staff"])
    await remind(events, org, learner)
    assert sorted(m.kind for m in await inbox_of(app, learner)) == [
        "policy.acknowledgment_due",
        "training.due_soon",
        "training.overdue",
    ]
    rows = [d for d in await deliveries_for(app, learner) if d.channel == Channel.EMAIL]
    digest_at = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # the next 08:00 in UTC
    assert {(d.status, d.digest, d.next_attempt_at) for d in rows} == {
        (DeliveryStatus.BATCHED, True, digest_at)
    }
    await app.state.worker.run_once()
    assert mail_files(app, learner["email"]) == []

    clock.set(digest_at)
    await app.state.worker.run_once()
    (digest,) = mail_files(app, learner["email"])
    assert digest["Subject"] == "Your reminders for today"
    text = str(digest.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    for line in ("1 training(s) due soon", "1 training(s) overdue", "1 policy(ies) to acknowledge"):
        assert line in text
    assert learner["name"] not in digest.as_string()
    rows = [d for d in await deliveries_for(app, learner) if d.channel == Channel.EMAIL]
    assert {d.status for d in rows} == {DeliveryStatus.SENT}

    # a reminder later that day waits for tomorrow's digest
    clock.advance(timedelta(hours=3))
    await events.publish(
        "upstander.training.due_soon",
        {
            "person_id": learner["person_id"],
            "course_id": str(uuid.uuid4()),
            "requirement_id": str(uuid.uuid4()),
            "due_at": DUE,
        },
        org_id=org,
    )
    await app.state.worker.run_once()
    assert len(mail_files(app, learner["email"])) == 1
    clock.set(digest_at + timedelta(days=1))
    await app.state.worker.run_once()
    assert len(mail_files(app, learner["email"])) == 2


async def test_the_digest_follows_the_persons_time_zone_and_language(
    app, client, caller, events, clock
):
    org = uuid.uuid4()
    me = caller("staff", org=org)
    learner = await person(events, org, ["staff"], person_id=str(me.person_id))
    body = {
        "quiet_hours": {"start": "23:00", "end": "06:00", "timezone": "America/Mexico_City"},
        "language": "es",
    }
    assert (
        await client.put("/notify/v1/preferences", json=body, headers=me.headers)
    ).status_code == 200
    await remind(events, org, learner)
    (row, *_) = [d for d in await deliveries_for(app, learner) if d.channel == Channel.EMAIL]
    # 10:00 UTC is 04:00 in Mexico City: the digest goes at 08:00 there, 14:00 UTC
    assert row.next_attempt_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    clock.set(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    await app.state.worker.run_once()
    (digest,) = mail_files(app, learner["email"])
    assert digest["Subject"] == "Sus recordatorios de hoy"


async def test_a_handlers_message_tells_a_confidential_reporter_one_sentence_and_keeps_no_address(
    app, events, smtp_server, use_smtp
):
    controller, collector = smtp_server
    use_smtp(controller.port)
    org = uuid.uuid4()
    manager = await person(events, org, ["case_manager"])
    address = f"reporter-{uuid.uuid4().hex[:8]}@example.net"
    envelope = await events.publish(
        "upstander.case.message_posted",
        {
            "case_id": str(uuid.uuid4()),
            "number": "DEMO-2026-0007",
            "author": "handler",
            "restricted_person_ids": [],
            "reporter_notice": {"channel": "email", "address": address, "language": "en"},
        },
        org_id=org,
    )
    ((recipients, raw),) = collector.messages
    assert recipients == [address]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == SENTENCE  # type: ignore[attr-defined]
    assert "DEMO-2026-0007" not in raw.decode() and "http" not in message.get_content()  # type: ignore[attr-defined]
    assert await inbox_of(app, manager) == []  # handlers are not told of their own message

    async with app.state.sessionmaker() as session:
        (row,) = (
            await session.scalars(
                select(Delivery).where(Delivery.event_id == uuid.UUID(envelope["id"]))
            )
        ).all()
        assert (row.channel, row.status, row.person_id) == (Channel.EMAIL, "sent", None)
        assert row.recipient_hash == hashlib.sha256(address.encode()).hexdigest()
        assert row.params == {}
        # the address is nowhere: not in the log, the inbox, or the outbox
        for model in (Delivery, InboxMessage, Outbox):
            for stored in (await session.scalars(select(model))).all():
                assert address not in str(vars(stored))


async def test_a_reporter_notice_in_spanish(app, events, smtp_server, use_smtp):
    controller, collector = smtp_server
    use_smtp(controller.port)
    org = uuid.uuid4()
    await events.publish(
        "upstander.case.message_posted",
        {
            "case_id": str(uuid.uuid4()),
            "number": "DEMO-2026-0008",
            "author": "handler",
            "reporter_notice": {"channel": "email", "address": "r@example.net", "language": "es"},
        },
        org_id=org,
    )
    ((_, raw),) = collector.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content().strip() == (  # type: ignore[attr-defined]
        "Tiene un mensaje nuevo sobre su denuncia. "
        "Inicie sesión con su código de recibo para leerlo."
    )


async def test_an_anonymous_reporter_hears_nothing(app, events, smtp_server, use_smtp):
    controller, collector = smtp_server
    use_smtp(controller.port)
    org = uuid.uuid4()
    envelope = await events.publish(
        "upstander.case.message_posted",
        {"case_id": str(uuid.uuid4()), "number": "DEMO-2026-0009", "author": "handler"},
        org_id=org,
    )
    await app.state.worker.run_once()
    assert collector.messages == []
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.event_id == uuid.UUID(envelope["id"]))
        )
        assert rows.all() == []


async def test_a_mail_outage_leaves_the_reporter_notice_to_the_publishers_retry(
    app, events, use_smtp, smtp_server
):
    controller, collector = smtp_server
    use_smtp(free_port())
    org = uuid.uuid4()
    envelope = events.envelope(
        "upstander.case.message_posted",
        {
            "case_id": str(uuid.uuid4()),
            "number": "DEMO-2026-0010",
            "author": "handler",
            "reporter_notice": {"channel": "email", "address": "r@example.net"},
        },
        org_id=org,
    )
    import json

    response = await events.client.post(
        "/notify/internal/events", content=json.dumps(envelope), headers=events.headers
    )
    assert response.status_code == 503
    assert "example.net" not in response.text
    use_smtp(controller.port)
    assert await events.send(envelope) == "processed"  # the relay's next try
    assert len(collector.messages) == 1
    assert await events.send(envelope) == "duplicate"
    assert len(collector.messages) == 1
