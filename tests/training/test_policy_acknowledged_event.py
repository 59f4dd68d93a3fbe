"""`upstander.policy.acknowledged`: once per person and version, ids only."""

from __future__ import annotations

from sqlalchemy import select

from upstander.kit.contracts import PolicyAcknowledged
from upstander.training.models import Outbox

POLICIES = "/training/v1/policies"


async def _acknowledged(app, policy_id: str) -> list[dict]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Outbox)
            .where(Outbox.type == PolicyAcknowledged.EVENT_TYPE)
            .where(Outbox.subject == f"policy/{policy_id}")
            .order_by(Outbox.seq)
        )
        return [app.state.events.envelope(row) for row in rows]


async def test_an_acknowledgment_is_announced_once(app, client, caller):
    trainer = caller("trainer")
    policy = await client.post(POLICIES, json={"title": "Respect"}, headers=trainer.headers)
    assert policy.status_code == 201, policy.text
    policy_id = policy.json()["id"]
    version = await client.post(
        f"{POLICIES}/{policy_id}/versions",
        json={"body": "Be kind.", "due_days": 14},
        headers=trainer.headers,
    )
    assert version.status_code == 201, version.text
    staff = caller("staff", org=trainer.org_id)
    url = f"{POLICIES}/{policy_id}/versions/1/acknowledge"
    first = await client.post(url, headers=staff.headers)
    assert first.status_code == 201, first.text
    assert (await client.post(url, headers=staff.headers)).status_code == 200

    [event] = await _acknowledged(app, policy_id)
    data = PolicyAcknowledged.model_validate(event["data"])
    assert data.person_id == staff.person_id
    assert str(data.acknowledgment_id) == first.json()["id"]
    assert data.version == 1 and event["orgid"] == str(trainer.org_id)
    assert "Be kind" not in str(event) and "Respect" not in str(event)
