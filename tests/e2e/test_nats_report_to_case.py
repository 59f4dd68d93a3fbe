"""From report to case to notice through the gateway, with every app's events on NATS
JetStream (`event_transport="nats"`, a private nats-server): the same story as
test_report_to_case.py, carried by the broker instead of the HTTP relay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from harness import Platform, running_platform
from nats_support import NatsServer, private_nats_server
from sqlalchemy import select

from upstander.cases import models as cases_models
from upstander.intake import models as intake_models
from upstander.kit.events import BROKER, DELIVERED
from upstander.kit.jetstream import NatsTransport
from upstander.notify import models as notify_models

SECRET_TEXT = "Quetzal-lantern-5512 he kept messaging me after the rally"


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A private nats-server with JetStream for this module (tests/nats_support.py)."""
    with private_nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@contextmanager
def _vault_slots_kept() -> Iterator[None]:
    """Give the services' vault slots back as they were: they are class attributes of each
    service's `Model`, so a second platform in the process takes them over, and the session's
    platform (tests/e2e/conftest.py) would find another platform's (closed) vaults."""
    slots = [models.Model.__vault_slot__ for models in (cases_models, intake_models, notify_models)]
    saved = [(slot, slot.vault if slot.attached else None) for slot in slots]
    try:
        yield
    finally:
        for slot, vault in saved:
            slot.vault = vault


@pytest.fixture(scope="module")
async def platform(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer
) -> AsyncIterator[Platform]:
    directory: Path = tmp_path_factory.mktemp("nats-platform")
    with _vault_slots_kept():
        async with running_platform(
            directory, event_transport="nats", nats_url=nats_server.url, nats_partitions=2
        ) as running:
            yield running


async def _report(platform: Platform, **fields: object) -> dict:
    body = {
        "org": "demo",
        "mode": "anonymous",
        "description": SECRET_TEXT,
        "categories": ["sexual_harassment"],
        **fields,
    }
    response = await platform.gateway.post("/intake/v1/reports", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _case_of(platform: Platform, report_id: str) -> dict:
    manager = await platform.auth("case_manager@demo.example")
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
    assert listing.status_code == 200, listing.text
    mine = [c for c in listing.json()["items"] if c.get("report_id") == report_id]
    assert len(mine) == 1, listing.json()
    return dict(mine[0])


async def test_an_anonymous_report_becomes_one_case_and_a_notice_over_nats(
    platform: Platform, nats_server: NatsServer
) -> None:
    assert all(isinstance(app.state.relay, NatsTransport) for app in platform.apps.values())
    filed = await _report(platform)
    await platform.drain()

    case = await _case_of(platform, filed["report_id"])
    assert case["status"] == "new"
    manager = await platform.auth("case_manager@demo.example")
    inbox = await platform.gateway.get("/notify/v1/inbox", headers=manager)
    assert inbox.status_code == 200, inbox.text
    notices = [m for m in inbox.json()["items"] if case["number"] in m["subject"] + m["body"]]
    assert len(notices) == 1, inbox.json()

    # One outbox row per event (the broker fans out), delivered, the report content erased.
    intake = platform.apps["intake"]
    async with intake.state.sessionmaker() as session:
        outbox = intake.state.events.outbox
        rows = list((await session.scalars(select(outbox))).all())
    submitted = [r for r in rows if r.type == "upstander.report.submitted"]
    assert len(submitted) == 1
    assert {r.destination for r in rows} == {BROKER}
    assert {r.status for r in rows} == {DELIVERED}
    assert submitted[0].payload is None
    # The broker's own storage holds the event (its id is there) sealed, never the words.
    stored = nats_server.stored_bytes()
    assert str(submitted[0].event_id).encode() in stored
    assert SECRET_TEXT.split()[0].encode() not in stored


async def test_a_confidential_reporter_is_told_of_a_reply_over_nats(platform: Platform) -> None:
    filed = await _report(
        platform,
        mode="confidential",
        reporter={"name": "Ari Moreno", "contact": "ari.moreno@example.org"},
    )
    await platform.drain()
    case = await _case_of(platform, filed["report_id"])
    mail = platform.directory / "mail"
    before = set(mail.glob("*.eml")) if mail.exists() else set()

    manager = await platform.auth("case_manager@demo.example")
    sent = await platform.gateway.post(
        f"/cases/v1/cases/{case['id']}/messages",
        json={"body": "Nats-marker-8812: may we call you?"},
        headers=manager,
    )
    assert sent.status_code == 201, sent.text
    await platform.drain()
    await platform.apps["notify"].state.worker.run_once()

    new = [p.read_text() for p in set(mail.glob("*.eml")) - before]
    to_reporter = [m for m in new if "ari.moreno@example.org" in m]
    assert len(to_reporter) == 1, new
    assert "Nats-marker-8812" not in to_reporter[0]
