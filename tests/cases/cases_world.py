"""Shared helpers of the workflow tests: an org's directory fed as events, and reports that
open cases in it (tests mint tokens as the gateway would)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, Table, TypeDecorator, func, insert, select, text

from upstander.cases.models import Case, Model, Outbox

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

    def _person_event(
        self, name: str, roles: list[str], manager: str | None = None, **extra: Any
    ) -> dict[str, Any]:
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
        return cloud_event("upstander.person.created", data, org_id=self.id)

    async def person(
        self, name: str, roles: list[str], manager: str | None = None, **extra: Any
    ) -> uuid.UUID:
        await self.send(self._person_event(name, roles, manager, **extra))
        return self.people[name]

    async def build(self) -> Org:
        """The directory above, as the events that make it leave it in the database.

        The first build of the run on each backend (and any build into a database that is not
        empty, such as a second organisation's) delivers the events as the relay does: one
        batch, each consumed in its own transaction, in order. What that left in the database
        is kept (`_World`), and later builds into an empty database write the same rows and
        take the same ids, in one transaction: a test starts from exactly the state the
        events make, for a tenth of the CPU (the world took about 0.1 s of every cases
        test)."""
        app: FastAPI = self.client._transport.app  # type: ignore[attr-defined]
        key = (app.state.engine.dialect.name, app.state.clock.now())
        world = _WORLDS.get(key)
        counts = await _row_counts(app)
        if world is not None and counts == world.counts_before:
            self.id, self.people = world.org_id, dict(world.people)
            await world.restore(app)
            return self
        await self._deliver()
        if world is None and not any(counts):  # built into a fresh (empty) database
            _WORLDS[key] = await _World.capture(app, self, counts)
        return self

    async def _deliver(self) -> None:
        org = {"org_id": str(self.id), "slug": "demo", "name": "Demo campaign", "active": True}
        events = [
            cloud_event("upstander.org.created", org, org_id=self.id),
            self._person_event("candidate", ["admin"], is_leadership=True),
            self._person_event("manager", ["case_manager"], "candidate"),
            self._person_event("involved", ["staff"], "manager"),
            self._person_event("underling", ["investigator"], "involved"),
            self._person_event("deputy", ["case_manager"], "manager"),
            self._person_event("handler", ["case_manager"], "candidate"),
            self._person_event("investigator", ["investigator"], "candidate"),
            self._person_event("excluded", ["investigator"], "candidate"),
            self._person_event("reviewer", ["reviewer"]),
            self._person_event("reviewer2", ["reviewer"]),
        ]
        response = await self.client.post(
            f"{EVENTS_URL}/batch",
            content=json.dumps(events),
            headers={
                **auth(self.service_token),
                "content-type": "application/cloudevents-batch+json",
            },
        )
        assert response.status_code == 200, response.text
        statuses = [result["status"] for result in response.json()["results"]]
        assert statuses == ["processed"] * len(events), response.text

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


# -- the world kept for later builds (see `Org.build`)

# Every table of cases, with the column types the database holds (no encryption, no time-zone
# handling: rows are copied as stored, so sealed fields stay sealed under the same keys).
_STORED = MetaData()
for _table in Model.metadata.sorted_tables:
    Table(
        _table.name,
        _STORED,
        *(
            Column(
                column.name,
                column.type.impl_instance
                if isinstance(column.type, TypeDecorator)
                else column.type,
                primary_key=column.primary_key,
                autoincrement=False,
            )
            for column in _table.columns
        ),
    )
_TABLES = [_STORED.tables[table.name] for table in Model.metadata.sorted_tables]


async def _row_counts(app: FastAPI) -> tuple[int, ...]:
    async with app.state.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # The harness's own bookkeeping (37 counts in one statement), not the app's work:
            # not under the app's 3 s `statement_timeout`, which a slow disk's checkpoint
            # (another test's database being copied) overran twice in a day of CI runs.
            await connection.execute(text("SET LOCAL statement_timeout = '60s'"))
        row = (
            await connection.execute(
                select(*(select(func.count()).select_from(t).scalar_subquery() for t in _TABLES))
            )
        ).one()
    return tuple(row)


_WORLDS: dict[tuple[str, Any], _World] = {}


@dataclass
class _World:
    org_id: uuid.UUID
    people: dict[str, uuid.UUID]
    counts_before: tuple[int, ...]
    rows: list[tuple[Table, list[dict[str, Any]]]]

    @classmethod
    async def capture(cls, app: FastAPI, org: Org, before: tuple[int, ...]) -> _World:
        rows: list[tuple[Table, list[dict[str, Any]]]] = []
        async with app.state.engine.connect() as connection:
            for table in _TABLES:
                found = [dict(row._mapping) for row in await connection.execute(select(table))]
                if found:
                    rows.append((table, found))
        return cls(org.id, dict(org.people), before, rows)

    async def restore(self, app: FastAPI) -> None:
        async with app.state.engine.begin() as connection:
            for table, rows in self.rows:
                await connection.execute(insert(table), rows)
            if connection.dialect.name == "postgresql":
                # Serial and identity columns: the next row numbers on from the copied ones.
                for table, _rows in self.rows:
                    for column in table.columns:
                        if column.primary_key and isinstance(column.type, Integer):
                            await connection.execute(
                                text(
                                    "SELECT setval(pg_get_serial_sequence(:t, :c), "
                                    f'(SELECT max("{column.name}") FROM "{table.name}")) '
                                    "WHERE pg_get_serial_sequence(:t, :c) IS NOT NULL"
                                ),
                                {"t": table.name, "c": column.name},
                            )


async def outbox(app: FastAPI, type_: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = (
            await session.scalars(select(Outbox).where(Outbox.type == type_).order_by(Outbox.seq))
        ).all()
        return [app.state.events.envelope(r) for r in rows]


async def load_case(app: FastAPI, case_id: uuid.UUID) -> Case:
    async with app.state.sessionmaker() as session:
        return await session.get_one(Case, case_id)
