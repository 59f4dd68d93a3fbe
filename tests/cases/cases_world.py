"""Shared helpers of the workflow tests: an org's directory fed as events, and reports that
open cases in it (tests mint tokens as the gateway would)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from upstander.cases.models import Case, Outbox

SUBMITTED_AT = "2026-11-24T09:30:00+00:00"
EVENTS_URL = "/cases/internal/events"
PROBLEM_JSON = "application/problem+json"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://upstander.dev/problems/{slug}", body
    return body


def cloud_event(type_: str, data: dict[str, Any], *, org_id: uuid.UUID) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/intake" if ".report." in type_ else "/gateway",
        "type": type_,
        "subject": "x",
        "time": SUBMITTED_AT,
        "datacontenttype": "application/json",
        "orgid": str(org_id),
        "data": data,
    }


@dataclass
class Org:
    """A campaign's directory:

    candidate (leadership, admin)
    ├── manager (case manager)
    │   ├── involved (staff)          ← the usual subject of a report
    │   │   └── underling (investigator)
    │   └── deputy (case manager)
    ├── handler (case manager)
    ├── investigator, excluded (investigators)
    reviewer, reviewer2 (independent reviewers, outside the chart)
    """

    client: httpx.AsyncClient
    mint: Any
    service_token: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    people: dict[str, uuid.UUID] = field(default_factory=dict)

    def __getattr__(self, name: str) -> uuid.UUID:
        try:
            return self.__dict__["people"][name]
        except KeyError:
            raise AttributeError(name) from None

    async def send(self, event: dict[str, Any]) -> httpx.Response:
        response = await self.client.post(
            EVENTS_URL,
            content=json.dumps(event),
            headers={**auth(self.service_token), "content-type": "application/cloudevents+json"},
        )
        assert response.status_code == 200, response.text
        return response

    async def person(
        self, name: str, roles: list[str], manager: str | None = None, **extra: Any
    ) -> uuid.UUID:
        person_id = self.people.setdefault(name, uuid.uuid4())
        data = {
            "person_id": str(person_id),
            "org_id": str(self.id),
            "email": f"{name}@demo.example",
            "name": name.title(),
            "roles": roles,
            "manager_id": str(self.people[manager]) if manager else None,
            "is_leadership": False,
            "language": "en",
            "active": True,
            **extra,
        }
        await self.send(cloud_event("upstander.person.created", data, org_id=self.id))
        return person_id

    async def build(self) -> Org:
        org = {"org_id": str(self.id), "slug": "demo", "name": "Demo campaign", "active": True}
        await self.send(cloud_event("upstander.org.created", org, org_id=self.id))
        await self.person("candidate", ["admin"], is_leadership=True)
        await self.person("manager", ["case_manager"], "candidate")
        await self.person("involved", ["staff"], "manager")
        await self.person("underling", ["investigator"], "involved")
        await self.person("deputy", ["case_manager"], "manager")
        await self.person("handler", ["case_manager"], "candidate")
        await self.person("investigator", ["investigator"], "candidate")
        await self.person("excluded", ["investigator"], "candidate")
        await self.person("reviewer", ["reviewer"])
        await self.person("reviewer2", ["reviewer"])
        return self

    def headers(self, name: str, roles: list[str] | None = None) -> dict[str, str]:
        default = {
            "candidate": ["admin"],
            "reviewer": ["reviewer"],
            "reviewer2": ["reviewer"],
            "investigator": ["investigator"],
            "underling": ["investigator"],
            "excluded": ["investigator"],
        }.get(name, ["case_manager"])
        return auth(self.mint(org=self.id, roles=roles or default, sub=self.people[name]))

    def admin(self, roles: list[str] | None = None) -> dict[str, str]:
        return auth(self.mint(org=self.id, roles=roles or ["admin"]))

    def reporter(self, report_id: uuid.UUID) -> dict[str, str]:
        token = self.mint(
            org=self.id, roles=[], sub=f"report:{report_id}", typ="reporter", report=report_id
        )
        return auth(token)

    async def report(
        self, involved: list[str] | None = None, excluded: list[str] | None = None, **extra: Any
    ) -> tuple[uuid.UUID, uuid.UUID]:
        """Submit a report; returns (report id, case id)."""
        report_id = uuid.uuid4()
        data = {
            "report_id": str(report_id),
            "org_id": str(self.id),
            "org_slug": "demo",
            "mode": "anonymous",
            "submitted_at": SUBMITTED_AT,
            "language": "en",
            "categories": ["sexual_harassment"],
            "description": "What happened",
            "people_involved": [
                {"person_id": str(self.people[n]), "role": "subject"}
                for n in (["involved"] if involved is None else involved)
            ],
            "excluded_person_ids": [
                str(self.people[n]) for n in (["excluded"] if excluded is None else excluded)
            ],
            **extra,
        }
        await self.send(cloud_event("upstander.report.submitted", data, org_id=self.id))
        listing = await self.client.get("/cases/v1/cases", headers=self.headers("reviewer"))
        [case] = [c for c in listing.json()["items"] if c["report_id"] == str(report_id)]
        return report_id, uuid.UUID(case["id"])


async def outbox(app: FastAPI, type_: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = (
            await session.scalars(select(Outbox).where(Outbox.type == type_).order_by(Outbox.seq))
        ).all()
        return [app.state.events.envelope(r) for r in rows]


async def load_case(app: FastAPI, case_id: uuid.UUID) -> Case:
    async with app.state.sessionmaker() as session:
        return await session.get_one(Case, case_id)
