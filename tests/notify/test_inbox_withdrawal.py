"""Notices withdrawn: when a case is hidden from more people after it opened (an allegation
names someone; their managers come with them), what notify told them about the case is taken
back (inbox messages, emails not sent yet, digest entries) and nothing about it reaches them
again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from restriction_support import (
    case_event,
    deliveries_of,
    inbox_rows,
    new_case,
    person,
    restrict,
)
from sqlalchemy import select

from upstander.notify.models import Channel, Delivery, DeliveryStatus, InboxMessage


async def team(events: Any, org: uuid.UUID) -> dict[str, dict[str, Any]]:
    """A manager, their report (both case managers), and a case manager outside the chain."""
    manager = await person(events, org, ["case_manager"])
    report = await person(events, org, ["case_manager"], manager_id=manager["person_id"])
    outsider = await person(events, org, ["case_manager"])
    return {"manager": manager, "report": report, "outsider": outsider}


def about(rows: list[Any], case: dict[str, str]) -> list[Any]:
    return [r for r in rows if r.case_id == uuid.UUID(case["case_id"])]


async def test_case_notices_record_their_case(app, events):
    org = uuid.uuid4()
    people = await team(events, org)
    case = new_case()
    await case_event(events, org, case)
    (message,) = await inbox_rows(app, people["manager"]["person_id"])
    assert message.case_id == uuid.UUID(case["case_id"])
    assert {d.case_id for d in await deliveries_of(app, people["manager"]["person_id"])} == {
        uuid.UUID(case["case_id"])
    }


async def test_a_restriction_withdraws_the_case_notices_from_the_named_person_and_their_manager(
    app, events
):
    org = uuid.uuid4()
    people = await team(events, org)
    case, other = new_case("DEMO-2026-0201"), new_case("DEMO-2026-0202")
    await case_event(events, org, case)
    await case_event(events, org, other)
    for who in people.values():
        assert len(about(await inbox_rows(app, who["person_id"]), case)) == 1

    # An allegation names the report: cases hides the case from them and from their manager.
    await restrict(
        events, org, case, [people["report"]["person_id"], people["manager"]["person_id"]]
    )

    for who in ("report", "manager"):
        rows = await inbox_rows(app, people[who]["person_id"])
        assert about(rows, case) == []
        assert len(about(rows, other)) == 1  # their other cases' notices stay
        assert all("0201" not in m.subject + m.body for m in rows)
    assert len(about(await inbox_rows(app, people["outsider"]["person_id"]), case)) == 1


async def test_a_restriction_cancels_unsent_emails_and_digest_entries_about_the_case(app, events):
    org = uuid.uuid4()
    people = await team(events, org)
    manager = people["manager"]
    case = new_case("DEMO-2026-0203")
    await case_event(events, org, case)  # the worker has not run: the emails are queued
    learner_reminder = {
        "person_id": manager["person_id"],
        "course_id": str(uuid.uuid4()),
        "requirement_id": str(uuid.uuid4()),
        "due_at": "2026-03-16T10:00:00+00:00",
    }
    await events.publish("upstander.training.due_soon", learner_reminder, org_id=org)
    async with app.state.sessionmaker() as session, session.begin():
        # A digest entry about the case (an org's rule could batch case reminders).
        now = datetime.now(UTC)
        session.add(
            Delivery(
                org_id=org,
                event_id=uuid.uuid4(),
                case_id=uuid.UUID(case["case_id"]),
                person_id=uuid.UUID(manager["person_id"]),
                channel=Channel.EMAIL,
                kind="case.deadline_approaching",
                params={"case_id": case["case_id"], "number": case["number"]},
                digest=True,
                status=DeliveryStatus.BATCHED,
                attempts=0,
                next_attempt_at=now + timedelta(hours=8),
                created_at=now,
                updated_at=now,
            )
        )

    await restrict(events, org, case, [manager["person_id"]])

    emails = [
        d for d in await deliveries_of(app, manager["person_id"]) if d.channel == Channel.EMAIL
    ]
    assert {(d.status, d.error) for d in about(emails, case)} == {
        (DeliveryStatus.DEAD, "withdrawn")
    }
    assert len(about(emails, case)) == 2  # the single notice and the digest entry
    # The training reminder stays in tomorrow's digest.
    assert [(d.kind, d.status) for d in emails if d.case_id is None] == [
        ("training.due_soon", DeliveryStatus.BATCHED)
    ]
    await app.state.worker.run_once()
    sent = [d for d in await deliveries_of(app, manager["person_id"]) if d.status == "sent"]
    assert [d.channel for d in sent] == [Channel.INBOX, Channel.INBOX]  # nothing by email
    outsider_emails = [
        d
        for d in await deliveries_of(app, people["outsider"]["person_id"])
        if d.channel == Channel.EMAIL
    ]
    assert [d.status for d in outsider_emails] == [DeliveryStatus.SENT]


async def test_restricted_people_never_hear_of_the_case_again(app, events):
    org = uuid.uuid4()
    people = await team(events, org)
    case = new_case("DEMO-2026-0204")
    await case_event(events, org, case)
    await restrict(events, org, case, [people["manager"]["person_id"]])
    # Later events: one lists the restriction, one does not (it was published before, or by
    # a path that does not know); neither reaches the manager.
    await case_event(
        events,
        org,
        case,
        "upstander.case.deadline_approaching",
        restricted=[people["manager"]["person_id"]],
        deadline="acknowledge",
        due_at="2026-12-09T10:00:00+00:00",
    )
    await case_event(
        events, org, case, "upstander.case.message_posted", routed_to=None, author="reporter"
    )
    assert about(await inbox_rows(app, people["manager"]["person_id"]), case) == []
    told = about(await deliveries_of(app, people["manager"]["person_id"]), case)
    assert {d.kind for d in told} == {"case.opened"}  # from before the restriction only
    outsider = about(await inbox_rows(app, people["outsider"]["person_id"]), case)
    assert sorted(m.kind for m in outsider) == [
        "case.deadline_approaching",
        "case.message_posted",
        "case.opened",
    ]


async def test_a_restriction_event_of_another_org_withdraws_nothing(app, events):
    org, intruder_org = uuid.uuid4(), uuid.uuid4()
    people = await team(events, org)
    case = new_case("DEMO-2026-0205")
    await case_event(events, org, case)
    await restrict(events, intruder_org, case, [people["manager"]["person_id"]])
    assert len(about(await inbox_rows(app, people["manager"]["person_id"]), case)) == 1


async def test_case_restricted_is_idempotent_and_tells_nobody(app, events):
    org = uuid.uuid4()
    people = await team(events, org)
    case = new_case("DEMO-2026-0206")
    await case_event(events, org, case)
    event = await restrict(events, org, case, [people["report"]["person_id"]])
    assert await events.send(event) == "duplicate"
    await restrict(events, org, case, [people["report"]["person_id"]])  # a new event, same news
    await restrict(events, org, case, ["not-a-uuid"])  # nothing usable: ignored, no error
    async with app.state.sessionmaker() as session:
        kinds = set(
            await session.scalars(
                select(InboxMessage.kind).where(
                    InboxMessage.org_id == org, InboxMessage.kind.like("case.restricted%")
                )
            )
        )
    assert kinds == set()
    assert len(about(await inbox_rows(app, people["manager"]["person_id"]), case)) == 1
