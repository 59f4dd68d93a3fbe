"""Helpers for the tests of conflicts in notify (webhook owners, withdrawn notices): people in
the directory projection, case events as cases publishes them, and an outside receiver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from upstander.notify.models import Delivery, InboxMessage, WebhookDelivery

RESTRICTED = "upstander.case.restricted"


async def person(
    events: Any,
    org_id: uuid.UUID,
    roles: list[str],
    *,
    person_id: uuid.UUID | None = None,
    manager_id: str | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """A person the gateway announced (`person.created`), in notify's directory projection."""
    person_id = person_id or uuid.uuid4()
    data = {
        "person_id": str(person_id),
        "org_id": str(org_id),
        "email": f"p-{person_id.hex[:12]}@example.org",
        "name": f"Person-{person_id.hex[:6]}",
        "title": "Organiser",
        "roles": roles,
        "manager_id": manager_id,
        "is_leadership": False,
        "language": "en",
        "active": active,
    }
    await events.publish("upstander.person.created", data, org_id=org_id, source="/gateway")
    return data


def new_case(number: str = "DEMO-2026-0042") -> dict[str, str]:
    return {"case_id": str(uuid.uuid4()), "number": number}


async def case_event(
    events: Any,
    org_id: uuid.UUID,
    case: dict[str, str],
    type_: str = "upstander.case.opened",
    *,
    restricted: list[str] | None = None,
    routed_to: str | None = "case_managers",
    **data: Any,
) -> dict[str, Any]:
    """A case event as cases publishes it: ids, the route, who the case is hidden from."""
    body: dict[str, Any] = {**case, "restricted_person_ids": restricted or [], **data}
    if routed_to is not None:
        body["routed_to"] = routed_to
    return await events.publish(type_, body, org_id=org_id)


async def restrict(
    events: Any, org_id: uuid.UUID, case: dict[str, str], person_ids: list[str]
) -> dict[str, Any]:
    """`upstander.case.restricted`, as cases publishes it when a restriction is added."""
    return await events.publish(
        RESTRICTED, {"case_id": case["case_id"], "person_ids": person_ids}, org_id=org_id
    )


async def inbox_rows(app: Any, person_id: str) -> list[InboxMessage]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(InboxMessage).where(InboxMessage.person_id == uuid.UUID(person_id))
        )
        return list(rows)


async def deliveries_of(app: Any, person_id: str) -> list[Delivery]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.person_id == uuid.UUID(person_id))
        )
        return list(rows)


async def webhook_rows(app: Any, webhook_id: str) -> list[WebhookDelivery]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == uuid.UUID(webhook_id))
        )
        return list(rows)


@dataclass
class Received:
    endpoint: str
    body: bytes


@dataclass
class Receiver:
    """An outside system: each endpoint answers from its plan (status codes, then 200)."""

    plans: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            name = request.path_params["name"]
            self.received.append(Received(name, await request.body()))
            plan = self.plans.get(name) or []
            return Response(status_code=plan.pop(0) if plan else 200)

        return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])

    def at(self, name: str) -> list[Received]:
        return [r for r in self.received if r.endpoint == name]

    def mentions(self, name: str, *needles: str) -> bool:
        """Whether anything `name` received holds any of `needles` (a case id, a number)."""
        return any(n.encode() in r.body for r in self.at(name) for n in needles)
