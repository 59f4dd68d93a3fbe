"""`upstander.training.completed`: every completion is announced in the transaction that
records it, whichever way it came (by hand, a CSV import, an xAPI statement), with ids, the
time and the source only (never a score)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select
from training_support import make_course

from upstander.kit.contracts import TrainingCompleted, parse_data
from upstander.training.models import Completion, Outbox

COMPLETIONS = "/training/v1/completions"
COMPLETED = "upstander.training.completed"
ACTIVITY = "https://lms.example.org/xapi/activities/bystander-101"


async def _announced(app: Any, person_id: str) -> dict[str, dict[str, Any]]:
    """The completion events staged for notify about one person, by completion id."""
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Outbox).where(Outbox.type == COMPLETED, Outbox.destination == "notify")
        )
        found = [json.loads(row.payload) for row in rows]
    return {data["completion_id"]: data for data in found if data["person_id"] == person_id}


async def _recorded(app: Any, person_id: str) -> set[str]:
    async with app.state.sessionmaker() as session:
        ids = await session.scalars(
            select(Completion.id).where(Completion.person_id == uuid.UUID(person_id))
        )
        return {str(found) for found in ids}


async def test_a_completion_recorded_by_hand_is_announced_with_ids_only(
    app, client, caller, directory
) -> None:
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    person = await directory.hire(trainer.org_id)
    created = await client.post(
        COMPLETIONS,
        json={
            "person_id": person["person_id"],
            "course_id": course["id"],
            "completed_at": "2025-12-01T10:00:00Z",
            "score": 95,
        },
        headers=trainer.headers,
    )
    assert created.status_code == 201, created.text
    announced = await _announced(app, person["person_id"])
    assert list(announced) == [created.json()["id"]]
    data = announced[created.json()["id"]]
    assert data == {
        "completion_id": created.json()["id"],
        "person_id": person["person_id"],
        "course_id": course["id"],
        "completed_at": "2025-12-01T10:00:00+00:00",
        "source": "manual",
    }
    assert isinstance(parse_data(COMPLETED, data), TrainingCompleted)


async def test_csv_and_xapi_completions_are_announced_once_each(
    app, client, caller, directory
) -> None:
    trainer = caller("trainer")
    await make_course(client, trainer.headers, title="Events course")
    person = await directory.hire(trainer.org_id)
    text = (
        "email,course,completed_at\n"
        f"{person['email']},Events course,2025-11-01\n"
        f"{person['email']},Events course,2025-11-02\n"
    )
    imported = await client.post(
        f"{COMPLETIONS}/imports",
        content=text,
        headers={**trainer.headers, "Content-Type": "text/csv"},
    )
    assert imported.json()["accepted"] == 2, imported.text
    statement = {
        "actor": {"objectType": "Agent", "mbox": f"mailto:{person['email']}"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"objectType": "Activity", "id": ACTIVITY},
        "timestamp": "2025-11-03T09:00:00Z",
    }
    stored = await client.post(
        "/training/v1/xapi/statements",
        json=statement,
        headers={**trainer.headers, "X-Experience-API-Version": "1.0.3"},
    )
    assert stored.status_code == 200, stored.text

    announced = await _announced(app, person["person_id"])
    assert set(announced) == await _recorded(app, person["person_id"])
    assert sorted(data["source"] for data in announced.values()) == ["csv", "csv", "xapi"]
    again = await client.post(
        f"{COMPLETIONS}/imports",
        content=text,
        headers={**trainer.headers, "Content-Type": "text/csv"},
    )
    assert again.json()["accepted"] == 0
    assert len(await _announced(app, person["person_id"])) == 3


async def test_a_large_import_announces_every_completion_in_one_write(
    app, client, caller, directory
) -> None:
    trainer = caller("trainer")
    await make_course(client, trainer.headers, title="Bulk events course")
    person = await directory.hire(trainer.org_id)
    lines = ["email,course,completed_at"] + [
        f"{person['email']},Bulk events course,2025-{1 + day // 28:02d}-{1 + day % 28:02d}"
        for day in range(60)
    ]
    imported = await client.post(
        f"{COMPLETIONS}/imports",
        content="\n".join(lines) + "\n",
        headers={**trainer.headers, "Content-Type": "text/csv"},
    )
    assert imported.json() == {"accepted": 60, "rejected": []}, imported.text
    announced = await _announced(app, person["person_id"])
    assert set(announced) == await _recorded(app, person["person_id"])
    assert len(announced) == 60
    for data in announced.values():
        assert isinstance(parse_data(COMPLETED, data), TrainingCompleted)
    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(Outbox).where(Outbox.type == COMPLETED))).all()
    assert len({row.event_id for row in rows}) == len(rows)  # one event id per completion
    assert {row.subject for row in rows} >= {f"completion/{found}" for found in announced}
