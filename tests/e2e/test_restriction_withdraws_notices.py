"""Through the gateway: a case opens and its handlers are told; then an allegation names one
of them. The case is hidden from that person and everyone above them, and what they were told
goes with it: the "A new case needs attention" notices leave their inboxes and their queued
emails are cancelled. An admin above them who registered a webhook for `upstander.case.*`
receives nothing identifying about the case from then on, nor about a case hidden from them
from the start."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harness import Platform
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PASSWORD = "a-long-password-1"
HANDLER = "case_manager@demo.example"


@dataclass
class Receiver:
    """An outside system behind a webhook URL: keeps what it is sent."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            return Response(status_code=204)

        return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])

    def mentioning(self, *needles: str) -> list[bytes]:
        return [body for _, body in self.received if any(n.encode() in body for n in needles)]


async def _person(
    platform: Platform, email: str, roles: list[str], manager_id: str | None = None
) -> str:
    admin = await platform.auth("admin@demo.example")
    response = await platform.gateway.post(
        "/identity/v1/people",
        json={
            "email": email,
            "name": f"Person {email.split('@')[0]}",
            "roles": roles,
            "manager_id": manager_id,
            "password": PASSWORD,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _case_of(platform: Platform, report_id: str) -> dict[str, Any]:
    await platform.drain()  # intake → cases: the case opens
    handler = await platform.auth(HANDLER)
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=handler)
    assert listing.status_code == 200, listing.text
    (case,) = [c for c in listing.json()["items"] if c.get("report_id") == report_id]
    return dict(case)


async def _report(platform: Platform, **fields: Any) -> str:
    body = {
        "org": "demo",
        "mode": "anonymous",
        "description": "It happened after the rally.",
        "categories": ["sexual_harassment"],
        **fields,
    }
    response = await platform.gateway.post("/intake/v1/reports", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["report_id"])


async def _notices(platform: Platform, headers: dict[str, str], number: str) -> list[Any]:
    inbox = await platform.gateway.get("/notify/v1/inbox?limit=200", headers=headers)
    assert inbox.status_code == 200, inbox.text
    return [m for m in inbox.json()["items"] if number in m["subject"] + m["body"]]


async def _emails(platform: Platform, person_id: str, status: str | None = None) -> list[Any]:
    admin = await platform.auth("admin@demo.example")
    params = {"person_id": person_id, "channel": "email", "limit": "200"}
    if status is not None:
        params["status"] = status
    log = await platform.gateway.get("/notify/v1/deliveries", params=params, headers=admin)
    assert log.status_code == 200, log.text
    return list(log.json()["items"])


async def _deliver_webhooks(platform: Platform) -> None:
    await platform.drain()
    await platform.apps["notify"].state.worker.run_once()


async def test_an_allegation_withdraws_the_notices_and_the_chain_admins_webhook_learns_nothing(
    platform: Platform,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    emails = {
        "admin": f"chain-admin-{suffix}@demo.example",
        "manager": f"manager-{suffix}@demo.example",
        "report": f"report-{suffix}@demo.example",
    }
    chain_admin = await _person(platform, emails["admin"], ["admin"])
    manager = await _person(platform, emails["manager"], ["case_manager"], chain_admin)
    report = await _person(platform, emails["report"], ["case_manager"], manager)
    await platform.drain()
    auth = {who: await platform.auth(email, password=PASSWORD) for who, email in emails.items()}

    # The manager and their report hold their email in quiet hours, so it stays queued.
    now = platform.clock.now()
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=6)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    for who in ("manager", "report"):
        saved = await platform.gateway.put(
            "/notify/v1/preferences", json={"quiet_hours": quiet}, headers=auth[who]
        )
        assert saved.status_code == 200, saved.text

    # The admin above them registers a webhook for every case event.
    receiver = Receiver()
    host = f"http://hooks-{suffix}.test"
    platform.transport.add(host, receiver.app())
    try:
        hook = await platform.gateway.post(
            "/notify/v1/webhooks",
            json={"url": f"{host}/cases", "event_types": ["upstander.case.*"]},
            headers=auth["admin"],
        )
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["id"]

        # A case opens, about no one yet: its handlers are told; so is the admin's system.
        case = await _case_of(platform, await _report(platform))
        await _deliver_webhooks(platform)
        for who in ("manager", "report"):
            assert len(await _notices(platform, auth[who], case["number"])) == 1
        for person_id in (manager, report):
            assert len(await _emails(platform, person_id, "pending")) == 1
        (opened,) = receiver.mentioning(case["id"])

        # An allegation names the manager's report.
        allegation = await platform.gateway.post(
            f"/cases/v1/cases/{case['id']}/allegations",
            json={
                "category": "sexual_harassment",
                "description": "Unwelcome comments in the van.",
                "subject_person_ids": [report],
            },
            headers=await platform.auth(HANDLER),
        )
        assert allegation.status_code == 201, allegation.text
        await platform.drain()

        # The case is hidden from the report and their whole chain...
        for who in emails:
            hidden = await platform.gateway.get(f"/cases/v1/cases/{case['id']}", headers=auth[who])
            assert hidden.status_code == 404, (who, hidden.text)
        # ...and what they were told about it is gone: no notice, no email left to send.
        for who, person_id in (("manager", manager), ("report", report)):
            assert await _notices(platform, auth[who], case["number"]) == []
            assert await _emails(platform, person_id, "pending") == []
            assert {(e["status"], e["error"]) for e in await _emails(platform, person_id)} == {
                ("dead", "withdrawn")
            }
        # The admin's endpoint no longer holds the earlier delivery (nothing to replay)...
        log = await platform.gateway.get(
            f"/notify/v1/webhooks/{hook_id}/deliveries", headers=auth["admin"]
        )
        assert log.status_code == 200, log.text
        assert case["id"] not in log.text
        assert not [d for d in log.json()["items"] if d["event_type"] == "upstander.case.opened"]

        # ...and receives nothing about the case from now on.
        message = await platform.gateway.post(
            f"/cases/v1/cases/{case['id']}/messages",
            json={"body": "Thank you; we are looking into it."},
            headers=await platform.auth(HANDLER),
        )
        assert message.status_code == 201, message.text
        await _deliver_webhooks(platform)
        assert receiver.mentioning(case["id"], case["number"]) == [opened]

        # A case about the report from the start: nothing identifying reaches the admin's
        # system, and nobody in the chain is told.
        second = await _case_of(
            platform,
            await _report(platform, people_involved=[{"person_id": report, "role": "subject"}]),
        )
        await _deliver_webhooks(platform)
        assert receiver.mentioning(second["id"], second["number"]) == []
        for who in emails:
            assert await _notices(platform, auth[who], second["number"]) == []
    finally:
        platform.transport.remove(host)
