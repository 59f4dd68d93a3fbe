"""Reminders: with a FrozenClock, each reminder fires once when it is due, not again on the
next pass, and again in the next cycle; supervisors get a digest of their reports' overdue
courses (ids only)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from training_support import make_course

from upstander.training.models import Outbox

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REMINDERS = (
    "upstander.training.due_soon",
    "upstander.training.overdue",
    "upstander.training.supervisor_digest",
    "upstander.policy.acknowledgment_due",
)


async def sent(app: Any, org_id: str | uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """Every reminder event of an org in the outbox, oldest first: (type, data)."""
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Outbox)
            .where(
                Outbox.org_id == uuid.UUID(str(org_id)),
                Outbox.destination == "notify",
                Outbox.type.in_(REMINDERS),
            )
            .order_by(Outbox.seq)
        )
        return [(row.type, json.loads(row.payload)) for row in rows]


async def new_events(app: Any, org_id: Any, before: int) -> list[tuple[str, dict[str, Any]]]:
    await app.state.reminders.run_once()
    return (await sent(app, org_id))[before:]


async def test_course_reminders_fire_once_per_cycle_and_supervisors_get_a_digest(
    app, client, caller, directory, clock
) -> None:
    clock.set(START)
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    requirement = await client.post(
        "/training/v1/requirements",
        headers=trainer.headers,
        json={
            "course_id": course["id"],
            "name": "Annual",
            "audience": "non_supervisors",
            "due_within_days": 30,
            "recurrence_months": 12,
        },
    )
    assert requirement.status_code == 201, requirement.text
    manager = await directory.hire(trainer.org_id, roles=("manager",))
    report = await directory.hire(trainer.org_id, manager=manager)
    other = await directory.hire(trainer.org_id, manager=manager)
    org = trainer.org_id
    ids = {"person_id": report["person_id"], "course_id": course["id"]}

    assert await new_events(app, org, 0) == []  # due in 30 days: not yet "soon"

    clock.set(START + timedelta(days=20))
    due_soon = await new_events(app, org, 0)
    assert sorted((t, d["person_id"]) for t, d in due_soon) == sorted(
        [
            ("upstander.training.due_soon", report["person_id"]),
            ("upstander.training.due_soon", other["person_id"]),
        ]
    )
    assert due_soon[0][1]["due_at"].startswith("2026-02-04")
    assert await new_events(app, org, 2) == []  # the same pass again sends nothing

    # `other` completes in time; `report` does not.
    done = await client.post(
        "/training/v1/completions",
        headers=trainer.headers,
        json={
            "person_id": other["person_id"],
            "course_id": course["id"],
            "completed_at": (START + timedelta(days=21)).isoformat(),
        },
    )
    assert done.status_code == 201, done.text
    clock.set(START + timedelta(days=31))
    overdue = await new_events(app, org, 2)
    assert overdue == [
        (
            "upstander.training.overdue",
            {**ids, "requirement_id": requirement.json()["id"], "due_at": overdue[0][1]["due_at"]},
        ),
        (
            "upstander.training.supervisor_digest",
            {"supervisor_id": manager["person_id"], "overdue": [ids]},
        ),
    ]
    clock.set(START + timedelta(days=32))
    assert await new_events(app, org, 4) == []

    # The next cycle: `other`'s completion lapses after 12 months; soon before, a reminder.
    clock.set(START + timedelta(days=21 + 365 - 10))
    renewal = await new_events(app, org, 4)
    assert [(t, d["person_id"]) for t, d in renewal] == [
        ("upstander.training.due_soon", other["person_id"])
    ]
    assert renewal[0][1]["due_at"].startswith("2027-01-26")
    assert await new_events(app, org, 5) == []


async def test_policy_acknowledgment_is_asked_once_per_version(
    app, client, caller, directory, clock
) -> None:
    clock.set(START)
    trainer = caller("trainer")
    person = await directory.hire(trainer.org_id)
    me = caller("staff", org=trainer.org_id, person=person["person_id"])
    policy = (
        await client.post(
            "/training/v1/policies", json={"title": "Respect policy"}, headers=trainer.headers
        )
    ).json()
    versions = f"/training/v1/policies/{policy['id']}/versions"
    await client.post(versions, json={"body": "Be kind.", "due_days": 14}, headers=trainer.headers)

    first = await new_events(app, trainer.org_id, 0)
    assert first == [
        (
            "upstander.policy.acknowledgment_due",
            {
                "person_id": person["person_id"],
                "policy_id": policy["id"],
                "policy_version": 1,
                "due_at": first[0][1]["due_at"],
            },
        )
    ]
    clock.set(START + timedelta(days=20))  # now overdue: still the same cycle
    assert await new_events(app, trainer.org_id, 1) == []
    ack = await client.post(f"{versions}/1/acknowledge", headers=me.headers)
    assert ack.status_code == 201, ack.text

    await client.post(versions, json={"body": "Be kinder.", "due_days": 7}, headers=trainer.headers)
    second = await new_events(app, trainer.org_id, 1)
    assert [(t, d["policy_version"]) for t, d in second] == [
        ("upstander.policy.acknowledgment_due", 2)
    ]
    assert await new_events(app, trainer.org_id, 2) == []


async def test_the_scheduler_is_off_in_the_background_when_settings_say_so(app) -> None:
    assert app.state.settings.reminders_background is False
    assert not app.state.reminders.running
