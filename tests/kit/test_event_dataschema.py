"""Every published envelope names the contract version its data follows: CloudEvents
`dataschema` = the JSON Schema `$id` of the type's contract (`.../<type>.v<N>.json`), on both
transports (the HTTP relay's envelope, and NATS's wire form), and consumers read the version
back from it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from upstander.kit.clock import FrozenClock
from upstander.kit.contracts import (
    CaseOpened,
    contract_for,
    latest_version,
    parse_event,
    schema_uri,
    version_of,
)
from upstander.kit.crypto import Keyring
from upstander.kit.db import Base, make_metadata
from upstander.kit.events import CloudEvent, EventBus, data_schema, event_tables
from upstander.kit.jetstream import NatsTransport
from upstander.kit.settings import KitSettings

NOW = datetime(2026, 11, 27, 16, 5, tzinfo=UTC)
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events" / "schemas"


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


Outbox, Inbox = event_tables(Model)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'events.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Model.metadata.create_all)
    yield engine
    await engine.dispose()


def _bus(*, broker: bool = False) -> EventBus:
    settings = KitSettings()
    return EventBus(
        "cases", Outbox, Inbox, Keyring.from_settings(settings), FrozenClock(NOW), broker=broker
    )


async def _published(
    engine: AsyncEngine, bus: EventBus, event_type: str, data: dict[str, Any]
) -> Any:
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as session, session.begin():
        event_id = await bus.publish(
            session, event_type, "case/1", data, org_id=uuid.uuid4(), at=NOW
        )
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Outbox).where(Outbox.event_id == event_id))).all()
    assert rows
    return rows[0]


def _case_opened() -> dict[str, Any]:
    return CaseOpened(
        case_id=uuid.uuid4(), number="DEMO-2026-0001", routed_to="case_managers"
    ).model_dump(mode="json")


async def test_an_envelope_names_its_contract_version_and_the_consumer_reads_it(
    engine: AsyncEngine,
) -> None:
    bus = _bus()
    row = await _published(engine, bus, "upstander.case.opened", _case_opened())

    envelope = bus.envelope(row)

    version = latest_version("upstander.case.opened")
    assert version == CaseOpened.EVENT_VERSION == 1
    assert envelope["dataschema"] == schema_uri("upstander.case.opened", version)
    assert envelope["dataschema"] == (
        "https://upstander.dev/events/schemas/upstander.case.opened.v1.json"
    )
    # The schema it names is the one published in docs/, with that `$id`.
    document = json.loads((SCHEMAS / "upstander.case.opened.v1.json").read_text())
    assert document["$id"] == envelope["dataschema"]
    # A consumer reads the version from it and parses the data with that contract.
    event = CloudEvent.model_validate(envelope)
    assert event.dataschema == envelope["dataschema"]
    assert version_of(event) == 1
    assert parse_event(event, CaseOpened).number == "DEMO-2026-0001"


async def test_every_contracted_type_gets_its_schema_and_an_uncontracted_one_none() -> None:
    for event_type in ("upstander.report.submitted", "upstander.person.updated"):
        model = contract_for(event_type)
        assert model is not None
        assert data_schema(event_type) == schema_uri(event_type, model.EVENT_VERSION)
    assert data_schema("upstander.nothing.happened") is None


async def test_an_event_without_a_contract_goes_out_without_dataschema(
    engine: AsyncEngine,
) -> None:
    bus = _bus(broker=True)  # one row whoever subscribes (on HTTP nobody would)
    row = await _published(engine, bus, "upstander.nothing.happened", {"x": 1})

    envelope = bus.envelope(row)

    assert "dataschema" not in envelope
    assert version_of(CloudEvent.model_validate(envelope)) == 1


async def test_the_nats_wire_form_carries_dataschema_in_the_clear(
    engine: AsyncEngine,
) -> None:
    bus = _bus(broker=True)
    row = await _published(engine, bus, "upstander.case.opened", _case_opened())
    settings = KitSettings(event_transport="nats")
    async with httpx.AsyncClient() as http:
        transport = NatsTransport(
            bus, async_sessionmaker(engine), http, object(), settings, consumer=None
        )
        _subject, body, _headers = transport.encode(row)

    wire = json.loads(body)
    # `data` is sealed on the wire; the attributes, dataschema included, are not.
    assert "data" not in wire and "data_base64" in wire
    assert wire["dataschema"] == schema_uri("upstander.case.opened", 1)

    class Message:
        data = body

    event = transport.decode(Message())  # type: ignore[arg-type]
    assert version_of(event) == 1
    assert parse_event(event, CaseOpened).routed_to == "case_managers"
