"""Outside webhooks: admins manage endpoints; events reach them signed per Standard Webhooks,
retried on schedule with the clock moved by the test, dead-lettered, replayed; secrets rotate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from notify_support import running_app
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from upstander.kit.clock import FrozenClock
from upstander.notify.models import Webhook, WebhookDelivery
from upstander.notify.webhooks.dispatcher import SCHEDULE

PATH = "/notify/v1/webhooks"
RECEIVER = "http://receiver.test"


@dataclass
class Received:
    endpoint: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An outside system: answers each endpoint from a plan (status codes, then 200)."""

    plans: dict[str, list[int | tuple[int, dict[str, str]]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            name = request.path_params["name"]
            self.received.append(Received(name, dict(request.headers), await request.body()))
            plan = self.plans.get(name) or []
            step = plan.pop(0) if plan else 200
            status, headers = step if isinstance(step, tuple) else (step, {})
            return Response(status_code=status, headers=headers)

        return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])

    def at(self, name: str) -> list[Received]:
        return [r for r in self.received if r.endpoint == name]


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
        routes={"receiver.test:80": receiver.app()},
    ) as application:
        yield World(application, clock, receiver)


@pytest.fixture
def app(world: World) -> Any:
    return world.app


@pytest.fixture(autouse=True)
def fresh_time(world: World) -> None:
    world.clock.set(datetime.now(UTC))


async def create_hook(client, admin, name: str, types: list[str] | None = None) -> dict[str, Any]:
    response = await client.post(
        PATH,
        json={
            "url": f"{RECEIVER}/{name}",
            "event_types": types or ["upstander.case.*"],
            "description": "HR system",
        },
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def open_case(events, org: uuid.UUID, **data: Any) -> dict[str, Any]:
    return await events.publish(
        "upstander.case.opened",
        {
            "case_id": str(uuid.uuid4()),
            "number": "DEMO-2026-0001",
            "routed_to": "case_managers",
            "restricted_person_ids": [str(uuid.uuid4())],
            **data,
        },
        org_id=org,
    )


def verify(secret: str, got: Received) -> dict[str, Any]:
    return dict(Verifier(secret).verify(got.body, got.headers))


async def deliveries(client, admin, hook_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{PATH}/{hook_id}/deliveries", headers=admin.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_an_event_arrives_signed_and_thin(world, client, caller, events):
    admin = caller("admin")
    hook = await create_hook(client, admin, "signed")
    assert hook["secret"].startswith("whsec_")
    envelope = await open_case(events, admin.org_id, description="NARRATIVE-7f3a")
    await events.publish(
        "upstander.person.updated", {"person_id": str(uuid.uuid4())}, org_id=admin.org_id
    )
    assert await world.app.state.worker.run_once() == 1

    (got,) = world.receiver.at("signed")
    payload = verify(hook["secret"], got)
    assert payload == {
        "type": "upstander.case.opened",
        "timestamp": envelope["time"],
        "data": {"case_id": envelope["data"]["case_id"], "number": "DEMO-2026-0001"},
    }
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["webhook-timestamp"] == str(int(world.clock.now().timestamp()))
    (log,) = await deliveries(client, admin, hook["id"])
    assert log["status"] == "sent" and log["attempts"] == 1 and log["response_code"] == 200
    assert log["message_id"] == got.headers["webhook-id"] and log["latency_ms"] is not None
    # the secret is shown once and stored sealed
    assert "secret" not in (await client.get(f"{PATH}/{hook['id']}", headers=admin.headers)).json()
    async with world.app.state.sessionmaker() as session:
        from sqlalchemy import literal_column

        stored = await session.scalar(
            select(literal_column("secret"))
            .select_from(Webhook)
            .where(Webhook.id == uuid.UUID(hook["id"]))
        )
    assert hook["secret"].encode() not in bytes(stored)


async def test_a_tampered_body_or_an_old_timestamp_fails_verification(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await create_hook(client, admin, "tamper")
    world.clock.set(datetime.now(UTC) - timedelta(minutes=6))
    await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    (stale,) = world.receiver.at("tamper")
    with pytest.raises(WebhookVerificationError):
        verify(hook["secret"], stale)

    world.clock.set(datetime.now(UTC))
    await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    fresh = world.receiver.at("tamper")[1]
    verify(hook["secret"], fresh)
    tampered = Received(fresh.endpoint, fresh.headers, fresh.body.replace(b"DEMO", b"DEMX"))
    with pytest.raises(WebhookVerificationError):
        verify(hook["secret"], tampered)
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + "QUJD" * 8, fresh)  # another secret


async def test_three_failures_then_success_delivers_once_on_the_fourth_try(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await create_hook(client, admin, "flaky")
    world.receiver.plans["flaky"] = [500, 500, 500]
    await open_case(events, admin.org_id)
    worker = world.app.state.worker
    await worker.run_once()
    for delay in SCHEDULE[1:4]:
        assert await worker.run_once() == 0  # not due yet: nothing sent early
        world.clock.advance(delay)
        await worker.run_once()
    got = world.receiver.at("flaky")
    assert len(got) == 4
    assert len({r.headers["webhook-id"] for r in got}) == 1  # the same id across retries
    (log,) = await deliveries(client, admin, hook["id"])
    assert (log["status"], log["attempts"], log["response_code"]) == ("sent", 4, 200)
    world.clock.advance(timedelta(days=1))
    await worker.run_once()
    assert len(world.receiver.at("flaky")) == 4
    assert (await client.get(f"{PATH}/{hook['id']}", headers=admin.headers)).json()[
        "failure_since"
    ] is None


async def test_an_endpoint_that_never_succeeds_ends_as_a_dead_letter_and_can_be_replayed(
    world, client, caller, events
):
    admin = caller("admin")
    hook = await create_hook(client, admin, "down")
    world.receiver.plans["down"] = [503] * len(SCHEDULE)
    await open_case(events, admin.org_id)
    worker = world.app.state.worker
    await worker.run_once()
    for delay in SCHEDULE[1:]:
        world.clock.advance(delay)
        await worker.run_once()
    world.clock.advance(timedelta(days=2))
    await worker.run_once()
    assert len(world.receiver.at("down")) == len(SCHEDULE) == 10
    (log,) = await deliveries(client, admin, hook["id"])
    assert (log["status"], log["attempts"], log["next_attempt_at"]) == ("dead", 10, None)
    dead = await client.get(
        f"{PATH}/{hook['id']}/deliveries", params={"status": "dead"}, headers=admin.headers
    )
    assert [d["id"] for d in dead.json()["items"]] == [log["id"]]

    replay = await client.post(
        f"{PATH}/{hook['id']}/deliveries/{log['id']}/replay", headers=admin.headers
    )
    assert replay.status_code == 202, replay.text
    await worker.run_once()
    assert len(world.receiver.at("down")) == 11
    (log,) = await deliveries(client, admin, hook["id"])
    assert log["status"] == "sent"
    assert world.receiver.at("down")[-1].headers["webhook-id"] == log["message_id"]


async def test_replay_since_resends_every_dead_letter_since_a_time(world, client, caller, events):
    admin = caller("admin")
    hook = await create_hook(client, admin, "gone-a-while")
    start = world.clock.now()
    world.receiver.plans["gone-a-while"] = [500] * 20
    for _ in range(2):
        await open_case(events, admin.org_id)
    worker = world.app.state.worker
    await worker.run_once()
    for delay in SCHEDULE[1:]:
        world.clock.advance(delay)
        await worker.run_once()
    assert {d["status"] for d in await deliveries(client, admin, hook["id"])} == {"dead"}
    world.receiver.plans["gone-a-while"] = []
    response = await client.post(
        f"{PATH}/{hook['id']}/replay", json={"since": start.isoformat()}, headers=admin.headers
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"replayed": 2}
    await worker.run_once()
    assert {d["status"] for d in await deliveries(client, admin, hook["id"])} == {"sent"}


async def test_410_disables_the_endpoint_and_tells_the_admins(world, client, caller, events):
    admin = caller("admin")
    await events.publish(
        "upstander.person.created",
        {
            "person_id": str(admin.person_id),
            "org_id": str(admin.org_id),
            "email": "admin@example.org",
            "name": "Admin",
            "roles": ["admin"],
            "language": "en",
            "active": True,
        },
        org_id=admin.org_id,
    )
    hook = await create_hook(client, admin, "gone")
    world.receiver.plans["gone"] = [410]
    await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    state = (await client.get(f"{PATH}/{hook['id']}", headers=admin.headers)).json()
    assert state["active"] is False and "410" in state["disabled_reason"]
    inbox = (await client.get("/notify/v1/inbox", headers=admin.headers)).json()["items"]
    assert [m["kind"] for m in inbox] == ["webhook.disabled"]
    await open_case(events, admin.org_id)  # a disabled endpoint gets nothing more
    await world.app.state.worker.run_once()
    assert len(world.receiver.at("gone")) == 1


async def test_429_honours_retry_after(world, client, caller, events):
    admin = caller("admin")
    await create_hook(client, admin, "busy")
    world.receiver.plans["busy"] = [(429, {"Retry-After": "120"})]
    await open_case(events, admin.org_id)
    worker = world.app.state.worker
    await worker.run_once()
    world.clock.advance(timedelta(seconds=119))
    await worker.run_once()
    assert len(world.receiver.at("busy")) == 1
    world.clock.advance(timedelta(seconds=1))
    await worker.run_once()
    assert len(world.receiver.at("busy")) == 2


async def test_failing_for_more_than_five_days_disables_the_endpoint(world, client, caller, events):
    admin = caller("admin")
    hook = await create_hook(client, admin, "dying")
    world.receiver.plans["dying"] = [500] * 50
    await open_case(events, admin.org_id)
    worker = world.app.state.worker
    await worker.run_once()
    world.clock.advance(timedelta(days=5, minutes=1))
    await open_case(events, admin.org_id)
    await worker.run_once()
    state = (await client.get(f"{PATH}/{hook['id']}", headers=admin.headers)).json()
    assert state["active"] is False and "5 days" in state["disabled_reason"]
    async with world.app.state.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.webhook_id == uuid.UUID(hook["id"]))
            )
        ).all()
    assert {r.status for r in rows} == {"dead"}
    # re-enabling clears the failure
    enabled = await client.patch(
        f"{PATH}/{hook['id']}", json={"active": True}, headers=admin.headers
    )
    assert enabled.json()["active"] is True and enabled.json()["failure_since"] is None


async def test_rotation_signs_with_both_secrets_for_a_day(world, client, caller, events):
    admin = caller("admin")
    hook = await create_hook(client, admin, "rotating")
    rotated = await client.post(f"{PATH}/{hook['id']}/rotate-secret", headers=admin.headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    got = world.receiver.at("rotating")[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify(hook["secret"], got)
    verify(new_secret, got)

    world.clock.advance(timedelta(hours=24, seconds=1))
    await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    later = world.receiver.at("rotating")[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    # (the receiver checks timestamps against the real clock, so check the HMAC directly)
    from upstander.notify.webhooks.signing import sign

    signed = sign(
        later.headers["webhook-id"], int(later.headers["webhook-timestamp"]), later.body, new_secret
    )
    assert later.headers["webhook-signature"] == signed


async def test_admins_manage_only_their_own_orgs_webhooks(world, client, caller):
    admin_a = caller("admin")
    admin_b = caller("admin")
    staff_a = caller("staff", org=admin_a.org_id)
    hook = await create_hook(client, admin_a, "mine")
    url = f"{PATH}/{hook['id']}"
    for method, path, body in [
        ("GET", url, None),
        ("PATCH", url, {"description": "x"}),
        ("DELETE", url, None),
        ("POST", f"{url}/rotate-secret", None),
        ("GET", f"{url}/deliveries", None),
        ("POST", f"{url}/replay", {"since": "2026-01-01T00:00:00Z"}),
        ("POST", f"{url}/deliveries/{uuid.uuid4()}/replay", None),
    ]:
        response = await client.request(method, path, json=body, headers=admin_b.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get(PATH, headers=admin_b.headers)).json()["items"] == []
    assert (await client.get(PATH, headers=staff_a.headers)).status_code == 403
    listed = (await client.get(PATH, headers=admin_a.headers)).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]]


async def test_update_and_delete(world, client, caller, events):
    admin = caller("admin")
    hook = await create_hook(client, admin, "changing", ["upstander.training.*"])
    await open_case(events, admin.org_id)  # not subscribed
    updated = await client.patch(
        f"{PATH}/{hook['id']}",
        json={"event_types": ["upstander.case.opened"], "description": "Case sync"},
        headers=admin.headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["event_types"] == ["upstander.case.opened"]
    await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    assert len(world.receiver.at("changing")) == 1
    deleted = await client.delete(f"{PATH}/{hook['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{PATH}/{hook['id']}", headers=admin.headers)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x.test/", "event_types": ["upstander.case.*"]},
        {"url": "http://x.test/", "event_types": []},
        {"url": "http://x.test/", "event_types": ["upstander.report.*"]},
        {"url": "http://x.test/", "event_types": ["upstander.case.*"], "secret": "whsec_x"},
    ],
)
async def test_invalid_webhooks_are_refused(client, caller, body):
    response = await client.post(PATH, json=body, headers=caller("admin").headers)
    assert response.status_code == 422, response.text


async def test_webhook_routes_are_documented(app):
    schema = app.openapi()
    operations = {
        op["operationId"]: op
        for path, methods in schema["paths"].items()
        if path.startswith(PATH)
        for op in methods.values()
    }
    assert set(operations) == {
        "create_webhook",
        "list_webhooks",
        "get_webhook",
        "update_webhook",
        "delete_webhook",
        "rotate_webhook_secret",
        "list_webhook_deliveries",
        "replay_webhook_delivery",
        "replay_webhook_deliveries",
    }
    for operation in operations.values():
        assert operation["tags"] == ["webhooks"]
        assert {"401", "403", "404"} <= set(operation["responses"])


async def test_webhook_deliveries_appear_in_the_send_log(world, client, caller, events):
    admin = caller("admin")
    hook = await create_hook(client, admin, "logged")
    world.receiver.plans["logged"] = [500]
    envelope = await open_case(events, admin.org_id)
    await world.app.state.worker.run_once()
    log = await client.get(
        "/notify/v1/deliveries", params={"channel": "webhook"}, headers=admin.headers
    )
    assert log.status_code == 200, log.text
    (row,) = log.json()["items"]
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, "HTTP 500")
    assert (row["webhook_id"], row["event_id"], row["recipient"]) == (
        hook["id"],
        envelope["id"],
        "webhook",
    )
    world.clock.advance(SCHEDULE[1])
    await world.app.state.worker.run_once()
    log = await client.get(
        "/notify/v1/deliveries", params={"channel": "webhook"}, headers=admin.headers
    )
    (row,) = log.json()["items"]
    assert (row["status"], row["attempts"], row["error"]) == ("sent", 2, None)
