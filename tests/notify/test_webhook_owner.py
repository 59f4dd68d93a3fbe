"""Webhook endpoints have an owner, and case events follow what that owner may see: an admin in
the chain above a respondent who registers `upstander.case.*` learns nothing of the case
hidden from them, restrictions added after registration apply from the next event, and what
their endpoints still hold about such a case is withdrawn."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from notify_support import running_app
from restriction_support import (
    Receiver,
    case_event,
    new_case,
    person,
    restrict,
    webhook_rows,
)
from sqlalchemy import update

from upstander.kit.clock import FrozenClock
from upstander.notify.models import Webhook
from upstander.notify.webhooks.dispatcher import SCHEDULE

PATH = "/notify/v1/webhooks"
RECEIVER = "http://owners.test"
# A `case.status_changed`'s move, as cases publishes it (its contract requires one).
MOVED = {"from": "new", "to": "triage"}


@dataclass
class World:
    app: Any
    clock: FrozenClock
    receiver: Receiver


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(test_backend, tmp_path_factory, minter) -> AsyncIterator[World]:
    receiver = Receiver()
    clock = FrozenClock(datetime.now(UTC))
    async with running_app(
        test_backend,
        tmp_path_factory,
        minter,
        clock=clock,
        routes={"owners.test:80": receiver.app()},
    ) as application:
        yield World(application, clock, receiver)


@pytest.fixture
def app(world: World) -> Any:
    return world.app


@pytest.fixture(autouse=True)
def fresh_time(world: World) -> None:
    world.clock.set(datetime.now(UTC))


async def register(
    client: Any, headers: dict[str, str], name: str, types: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        PATH,
        json={"url": f"{RECEIVER}/{name}", "event_types": types or ["upstander.case.*"]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deliver(world: World) -> None:
    await world.app.state.worker.run_once()


async def test_an_endpoint_whose_owner_the_case_is_hidden_from_gets_nothing_of_it(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await register(client, admin.headers, "chain-admin")
    assert hook["owner_person_id"] == str(admin.person_id)
    hidden, visible = new_case("DEMO-2026-0101"), new_case("DEMO-2026-0102")
    await case_event(events, admin.org_id, hidden, restricted=[str(admin.person_id)])
    await case_event(
        events,
        admin.org_id,
        hidden,
        "upstander.case.status_changed",
        restricted=[str(admin.person_id)],
        **MOVED,
    )
    await case_event(events, admin.org_id, visible)
    await deliver(world)

    assert len(world.receiver.at("chain-admin")) == 1
    assert world.receiver.mentions("chain-admin", visible["case_id"])
    assert not world.receiver.mentions("chain-admin", hidden["case_id"], hidden["number"])
    assert [r.case_id for r in await webhook_rows(world.app, hook["id"])] == [
        uuid.UUID(visible["case_id"])
    ]


async def test_a_restriction_added_after_registration_applies_from_the_next_event(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await register(client, admin.headers, "later")
    case = new_case("DEMO-2026-0103")
    await case_event(events, admin.org_id, case)  # not hidden from the owner yet
    await deliver(world)
    assert len(world.receiver.at("later")) == 1

    await restrict(events, admin.org_id, case, [str(admin.person_id)])
    # A later event that does not list the owner (stale, or from a path that forgot): notify
    # remembers the restriction it heard.
    await case_event(
        events, admin.org_id, case, "upstander.case.message_posted", routed_to=None, author="system"
    )
    await case_event(events, admin.org_id, case, "upstander.case.status_changed", **MOVED)
    await deliver(world)
    assert len(world.receiver.at("later")) == 1
    # The delivery it got before is withdrawn: nothing about the case is left to replay.
    assert await webhook_rows(world.app, hook["id"]) == []
    replay = await client.post(
        f"{PATH}/{hook['id']}/replay",
        json={"since": (world.clock.now() - timedelta(days=1)).isoformat(), "include_sent": True},
        headers=admin.headers,
    )
    assert replay.json() == {"replayed": 0}


async def test_queued_deliveries_are_withdrawn_when_the_owner_is_restricted(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await register(client, admin.headers, "retrying")
    world.receiver.plans["retrying"] = [500]
    case, other = new_case("DEMO-2026-0104"), new_case("DEMO-2026-0105")
    await case_event(events, admin.org_id, case)
    await case_event(events, admin.org_id, other)
    world.receiver.plans["retrying"] = [500, 500]
    await deliver(world)  # both failed; retries are queued

    await restrict(events, admin.org_id, case, [str(admin.person_id)])
    assert {r.case_id for r in await webhook_rows(world.app, hook["id"])} == {
        uuid.UUID(other["case_id"])
    }
    log = await client.get(
        "/notify/v1/deliveries",
        params={"channel": "webhook", "status": "dead"},
        headers=admin.headers,
    )
    assert [row["error"] for row in log.json()["items"]] == ["withdrawn"]

    before = len(world.receiver.at("retrying"))
    world.clock.advance(SCHEDULE[1])
    await deliver(world)
    retried = world.receiver.at("retrying")[before:]
    assert len(retried) == 1 and other["case_id"].encode() in retried[0].body


async def test_case_restricted_is_never_forwarded_nor_subscribable(world, client, caller, events):
    admin = caller("admin")
    hook = await register(client, admin.headers, "everything", ["upstander.case.*"])
    case = new_case("DEMO-2026-0106")
    await restrict(events, admin.org_id, case, [str(uuid.uuid4())])
    await deliver(world)
    assert world.receiver.at("everything") == []
    assert await webhook_rows(world.app, hook["id"]) == []
    refused = await client.post(
        PATH,
        json={"url": f"{RECEIVER}/x", "event_types": ["upstander.case.restricted"]},
        headers=admin.headers,
    )
    assert refused.status_code == 422, refused.text


async def test_an_endpoint_without_an_owner_gets_no_case_events_until_someone_claims_it(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await register(
        client, admin.headers, "legacy", ["upstander.case.*", "upstander.training.*"]
    )
    async with world.app.state.sessionmaker() as session, session.begin():
        # As an endpoint registered before owners were kept.
        await session.execute(
            update(Webhook).where(Webhook.id == uuid.UUID(hook["id"])).values(owner_person_id=None)
        )
    case = new_case("DEMO-2026-0107")
    await case_event(events, admin.org_id, case)
    await events.publish(
        "upstander.training.due_soon",
        {
            "person_id": str(uuid.uuid4()),
            "course_id": str(uuid.uuid4()),
            "requirement_id": str(uuid.uuid4()),
            "due_at": "2026-03-16T10:00:00+00:00",
        },
        org_id=admin.org_id,
        source="/training",
    )
    await deliver(world)
    got = world.receiver.at("legacy")
    assert len(got) == 1 and b"upstander.training.due_soon" in got[0].body
    assert not world.receiver.mentions("legacy", case["case_id"], case["number"])

    claimed = await client.patch(f"{PATH}/{hook['id']}", json={}, headers=admin.headers)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["owner_person_id"] == str(admin.person_id)
    await case_event(events, admin.org_id, new_case("DEMO-2026-0108"))
    await deliver(world)
    assert world.receiver.mentions("legacy", "DEMO-2026-0108")


# What the gateway signs for a client granted the management of webhooks.
WEBHOOKS = "webhooks:manage"


async def test_an_api_clients_endpoint_is_owned_by_the_clients_owner(
    world, client, minter, caller, events
):
    admin = caller("admin")
    owned = minter.mint(
        org=admin.org_id,
        roles=["admin"],
        sub="client-hr-sync",
        typ="client",
        scope=WEBHOOKS,
        owner=str(admin.person_id),
    )
    orphan = minter.mint(
        org=admin.org_id, roles=["admin"], sub="client-old", typ="client", scope=WEBHOOKS
    )
    bad = minter.mint(
        org=admin.org_id,
        roles=["admin"],
        sub="client-odd",
        typ="client",
        scope=WEBHOOKS,
        owner={"id": 1},
    )
    by_client = await register(client, {"Authorization": f"Bearer {owned}"}, "client-owned")
    by_orphan = await register(client, {"Authorization": f"Bearer {orphan}"}, "client-orphan")
    by_bad = await register(client, {"Authorization": f"Bearer {bad}"}, "client-bad")
    assert by_client["owner_person_id"] == str(admin.person_id)
    assert by_orphan["owner_person_id"] is None and by_bad["owner_person_id"] is None

    hidden, visible = new_case("DEMO-2026-0109"), new_case("DEMO-2026-0110")
    await case_event(events, admin.org_id, hidden, restricted=[str(admin.person_id)])
    await case_event(events, admin.org_id, visible)
    await deliver(world)
    assert not world.receiver.mentions("client-owned", hidden["case_id"], hidden["number"])
    assert world.receiver.mentions("client-owned", visible["case_id"])
    assert world.receiver.at("client-orphan") == world.receiver.at("client-bad") == []


async def test_whoever_changes_an_endpoint_becomes_its_owner(world, client, caller, events):
    owner = caller("admin")
    conflicted = caller("admin", org=owner.org_id)
    hook = await register(client, owner.headers, "repointed")
    changed = await client.patch(
        f"{PATH}/{hook['id']}", json={"description": "mine now"}, headers=conflicted.headers
    )
    assert changed.json()["owner_person_id"] == str(conflicted.person_id)
    case = new_case("DEMO-2026-0111")
    await case_event(events, owner.org_id, case, restricted=[str(conflicted.person_id)])
    await deliver(world)
    assert world.receiver.at("repointed") == []


async def test_owners_see_cases_by_role_and_route_and_lose_them_when_deactivated(
    world, client, minter, events
):
    org = uuid.uuid4()
    admin = await person(events, org, ["admin"])
    reviewer = await person(events, org, ["admin", "reviewer"])
    leaver = await person(events, org, ["admin"])

    def headers(who: dict[str, Any]) -> dict[str, str]:
        token = minter.mint(org=org, roles=who["roles"], sub=who["person_id"])
        return {"Authorization": f"Bearer {token}"}

    await register(client, headers(admin), "route-admin")
    await register(client, headers(reviewer), "route-reviewer")
    await register(client, headers(leaver), "route-leaver")
    await events.publish(
        "upstander.person.deactivated", {"person_id": leaver["person_id"]}, org_id=org
    )
    to_reviewers = new_case("DEMO-2026-0112")
    await case_event(events, org, to_reviewers, routed_to="reviewers")
    await deliver(world)
    # A case routed to independent reviewers (it involves leadership): not for admins.
    assert not world.receiver.mentions("route-admin", to_reviewers["case_id"])
    assert world.receiver.mentions("route-reviewer", to_reviewers["case_id"])
    # A rerouted case: later events without a route follow the new one.
    rerouted = new_case("DEMO-2026-0113")
    await case_event(events, org, rerouted)
    await case_event(events, org, rerouted, "upstander.case.rerouted", routed_to="reviewers")
    await case_event(
        events, org, rerouted, "upstander.case.message_posted", routed_to=None, author="system"
    )
    await deliver(world)
    assert len([r for r in world.receiver.at("route-admin") if b"0113" in r.body]) == 1
    assert len([r for r in world.receiver.at("route-reviewer") if b"0113" in r.body]) == 3
    # A deactivated owner may see nothing.
    assert world.receiver.at("route-leaver") == []
