"""What HR and LMS systems receive on their webhooks: people's events and training
completions, thinned to ids (never a name, an email, a role or a score). The event types an
endpoint may subscribe to, those notify forwards, and those docs/events.md lists as sent to
webhooks are one and the same set."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from upstander.kit.contracts import event_types
from upstander.notify.models import WebhookDelivery
from upstander.notify.webhooks.schemas import WebhookCreate
from upstander.notify.webhooks.service import FORWARDED_PREFIXES, NOT_FORWARDED

PATH = "/notify/v1/webhooks"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


async def _hook(client: Any, admin: Any, types: list[str]) -> str:
    response = await client.post(
        PATH,
        json={"url": "http://hr.test/hook", "event_types": types, "description": "HR"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _payloads(app: Any, hook_id: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == uuid.UUID(hook_id))
            .order_by(WebhookDelivery.created_at)
        )
        return [dict(row.payload) for row in rows]


async def test_person_and_training_events_reach_hr_webhooks_as_ids_only(
    app, client, caller, events
) -> None:
    admin = caller("admin")
    hr = await _hook(client, admin, ["upstander.person.*", "upstander.training.completed"])
    cases_only = await _hook(client, admin, ["upstander.case.*"])
    person_id, manager_id = str(uuid.uuid4()), str(uuid.uuid4())
    person = {
        "person_id": person_id,
        "org_id": str(admin.org_id),
        "email": "ana.private@demo.example",
        "name": "Ana Private",
        "title": "Organizer",
        "roles": ["investigator"],
        "manager_id": manager_id,
        "is_leadership": False,
        "language": "en",
        "active": True,
        "external_id": "E-1042",
    }
    await events.publish("upstander.person.created", person, org_id=admin.org_id, source="/gateway")
    await events.publish(
        "upstander.person.deactivated",
        {**person, "active": False},
        org_id=admin.org_id,
        source="/gateway",
    )
    completion = {
        "completion_id": str(uuid.uuid4()),
        "person_id": person_id,
        "course_id": str(uuid.uuid4()),
        "completed_at": "2026-11-30T10:00:00Z",
        "source": "xapi",
    }
    await events.publish(
        "upstander.training.completed", completion, org_id=admin.org_id, source="/training"
    )

    sent = await _payloads(app, hr)
    assert [payload["type"] for payload in sent] == [
        "upstander.person.created",
        "upstander.person.deactivated",
        "upstander.training.completed",
    ]
    ids = {"person_id": person_id, "manager_id": manager_id, "external_id": "E-1042"}
    assert sent[0]["data"] == {**ids, "org_id": str(admin.org_id)}
    assert sent[1]["data"] == sent[0]["data"]
    assert sent[2]["data"] == {
        key: completion[key] for key in ("completion_id", "person_id", "course_id")
    }
    text = str(sent)
    for private in ("Ana Private", "ana.private", "Organizer", "investigator"):
        assert private not in text
    assert await _payloads(app, cases_only) == []


@pytest.mark.parametrize("pattern", ["upstander.org.*", "upstander.report.submitted"])
async def test_organisation_and_report_events_cannot_be_subscribed(client, caller, pattern):
    response = await client.post(
        PATH,
        json={"url": "http://hr.test/hook", "event_types": [pattern]},
        headers=caller("admin").headers,
    )
    assert response.status_code == 422, response.text


def _subscribable(event_type: str) -> bool:
    try:
        WebhookCreate(url="https://hr.example/hook", event_types=[event_type])
    except ValueError:
        return False
    return True


def _forwarded(event_type: str) -> bool:
    return event_type.startswith(FORWARDED_PREFIXES) and event_type not in NOT_FORWARDED


def _documented_for_webhooks() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## What outside systems receive (webhooks)", 1)[1].split("\n## ", 1)[0]
    table = section.split("<!-- webhook-types -->", 2)[1]
    return set(re.findall(r"`(upstander\.[a-z_.]+)`", table))


def test_subscribable_forwarded_and_documented_webhook_events_are_the_same_set() -> None:
    subscribable = {event_type for event_type in event_types() if _subscribable(event_type)}
    forwarded = {event_type for event_type in event_types() if _forwarded(event_type)}
    assert subscribable == forwarded
    assert _documented_for_webhooks() == forwarded
    assert {
        "upstander.person.created",
        "upstander.person.updated",
        "upstander.person.deactivated",
        "upstander.training.completed",
        "upstander.case.assigned",
        "upstander.case.updated",
        "upstander.policy.acknowledged",
    } <= forwarded


async def test_case_updates_and_policy_acknowledgments_reach_webhooks_as_ids_only(
    app, client, caller, events
) -> None:
    admin = caller("admin")
    hook = await _hook(client, admin, ["upstander.case.updated", "upstander.policy.*"])
    case_id, person_id, policy_id = (str(uuid.uuid4()) for _ in range(3))
    hidden_from = str(uuid.uuid4())
    await events.publish(
        "upstander.case.updated",
        {
            "case_id": case_id,
            "number": "DEMO-2026-0007",
            "routed_to": "case_managers",
            "restricted_person_ids": [hidden_from],
            "status": "investigation",
            "version": 4,
        },
        org_id=admin.org_id,
        source="/cases",
    )
    acknowledgment = {
        "acknowledgment_id": str(uuid.uuid4()),
        "person_id": person_id,
        "policy_id": policy_id,
        "version": 2,
        "acknowledged_at": "2026-11-30T10:00:00Z",
    }
    await events.publish(
        "upstander.policy.acknowledged", acknowledgment, org_id=admin.org_id, source="/training"
    )
    sent = await _payloads(app, hook)
    assert [payload["type"] for payload in sent] == [
        "upstander.case.updated",
        "upstander.policy.acknowledged",
    ]
    assert sent[0]["data"] == {
        "case_id": case_id,
        "number": "DEMO-2026-0007",
        "status": "investigation",
        "version": 4,
    }
    assert hidden_from not in str(sent)
    assert sent[1]["data"] == {
        key: acknowledgment[key]
        for key in ("acknowledgment_id", "person_id", "policy_id", "version")
    }
