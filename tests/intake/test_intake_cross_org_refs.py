"""A report names only its own organisation's people: intake keeps which organisation each
person belongs to (from the gateway's `upstander.person.*` events, ids only) and refuses a
report that names another organisation's people by id, with a 422 naming each position."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from upstander.intake.forms.service import ensure_org
from upstander.intake.models import DirectoryPerson, Outbox
from upstander.kit.catalogue import subscribers

REPORTS = "/intake/v1/reports"
EVENTS = "/intake/internal/events"
PROBLEM_JSON = "application/problem+json"
NOT_OURS = "Not a person of this organisation."


def person_event(
    person_id: uuid.UUID, org_id: uuid.UUID, type_: str = "upstander.person.created"
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/gateway",
        "type": type_,
        "subject": f"person/{person_id}",
        "time": datetime(2026, 11, 24, tzinfo=UTC).isoformat(),
        "orgid": str(org_id),
        "data": {
            "person_id": str(person_id),
            "org_id": str(org_id),
            "email": "someone@a.example",
            "name": "Some One",
            "roles": ["staff"],
            "active": True,
        },
    }


class World:
    """Two organisations, `a` and `b`, each with one person intake has heard of."""

    def __init__(self, client: httpx.AsyncClient, service_token: str) -> None:
        self.client = client
        self.headers = {
            "Authorization": f"Bearer {service_token}",
            "content-type": "application/cloudevents+json",
        }
        self.org_a, self.org_b = uuid.uuid4(), uuid.uuid4()
        self.person_a, self.person_b = uuid.uuid4(), uuid.uuid4()

    async def deliver(self, event: dict[str, Any]) -> httpx.Response:
        response = await self.client.post(EVENTS, content=json.dumps(event), headers=self.headers)
        assert response.status_code == 200, response.text
        return response


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, mint_service: Any) -> World:
    world = World(client, mint_service("gateway"))
    async with app.state.sessionmaker() as session:
        await ensure_org(session, world.org_a, "alpha", "Alpha")
        await ensure_org(session, world.org_b, "beta", "Beta")
        await session.commit()
    await world.deliver(person_event(world.person_a, world.org_a))
    await world.deliver(person_event(world.person_b, world.org_b))
    return world


def report(**fields: Any) -> dict[str, Any]:
    return {
        "org": "beta",
        "mode": "anonymous",
        "description": "He cornered me in the copy room.",
        "categories": ["sexual_harassment"],
        **fields,
    }


def errors_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["type"] == "https://upstander.dev/problems/validation-error"
    return list(body["errors"])


async def submitted_events(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return len((await session.scalars(select(Outbox))).all())


def test_intake_subscribes_to_person_events() -> None:
    assert "intake" in subscribers("upstander.person.created")
    assert "intake" in subscribers("upstander.person.deactivated")


async def test_person_events_keep_only_the_person_s_organisation(
    app: FastAPI, world: World
) -> None:
    again = await world.deliver(
        person_event(world.person_a, world.org_b, "upstander.person.updated")
    )

    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(DirectoryPerson))).all()
    assert again.json() == {"status": "processed"}
    # A person never moves between organisations: the confused update changed nothing.
    assert {(row.id, row.org_id) for row in rows} == {
        (world.person_a, world.org_a),
        (world.person_b, world.org_b),
    }


async def test_a_report_naming_another_org_s_person_as_involved_is_refused(
    app: FastAPI, world: World
) -> None:
    response = await world.client.post(
        REPORTS,
        json=report(
            people_involved=[
                {"person_id": str(world.person_b), "role": "subject"},
                {"person_id": str(world.person_a), "role": "subject"},
            ]
        ),
    )

    assert errors_of(response) == [
        {"field": "body.people_involved.1.person_id", "message": NOT_OURS}
    ]
    assert await submitted_events(app) == 0


async def test_a_report_excluding_another_org_s_person_is_refused(
    app: FastAPI, world: World
) -> None:
    response = await world.client.post(
        REPORTS, json=report(excluded_person_ids=[str(world.person_a)])
    )

    assert errors_of(response) == [{"field": "body.excluded_person_ids.0", "message": NOT_OURS}]
    assert await submitted_events(app) == 0


async def test_a_report_naming_another_org_s_person_as_witness_is_refused(
    world: World,
) -> None:
    response = await world.client.post(
        REPORTS, json=report(witnesses=[{"person_id": str(world.person_a)}])
    )

    assert errors_of(response) == [{"field": "body.witnesses.0.person_id", "message": NOT_OURS}]


async def test_a_report_naming_its_own_people_and_unknown_ids_is_accepted(
    app: FastAPI, world: World
) -> None:
    # An id intake has not heard of yet (a person created a moment ago) never holds a report
    # up: the cases service checks again when the case opens.
    unknown = uuid.uuid4()
    response = await world.client.post(
        REPORTS,
        json=report(
            people_involved=[{"person_id": str(world.person_b), "role": "subject"}],
            excluded_person_ids=[str(unknown)],
        ),
    )

    assert response.status_code == 201, response.text
    assert await submitted_events(app) == 1
