"""The kit's outbox administration routes (`/{service}/v1/admin/outbox`) document every status
they answer, as problem+json, and answer no other: bad parameters are a documented 422, an
out-of-range event number is a 422 (not a 500 from the database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from helpers import TokenMinter

from upstander.kit.clock import FrozenClock

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# Signs tokens as the gateway does and serves its JWKS to the apps.
MINTER = TokenMinter()
SERVICES = ("gateway", "intake", "cases", "training", "notify")
LIST = "/intake/v1/admin/outbox"
REQUEUE = "/intake/v1/admin/outbox/{seq}/requeue"


def _token(*roles: str) -> str:
    return MINTER.mint(org=uuid.uuid4(), roles=list(roles), issued_at=NOW)


def _create(service: str, **settings: Any) -> FastAPI:
    settings_module = __import__(f"upstander.{service}.settings", fromlist=["Settings"])
    app_module = __import__(f"upstander.{service}.app", fromlist=["create_app"])
    app: FastAPI = app_module.create_app(
        settings_module.Settings(**settings), transport=MINTER.transport(), clock=FrozenClock(NOW)
    )
    return app


def _outbox_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        if "/admin/outbox" in path
        for method, operation in item.items()
    }


@pytest.mark.parametrize("service", SERVICES)
def test_the_outbox_routes_document_their_problems_in_every_service(service: str) -> None:
    spec = _create(service, database_url="sqlite+aiosqlite://").openapi()
    operations = _outbox_operations(spec)
    assert len(operations) == 2
    for (method, path), operation in operations.items():
        where = f"{method.upper()} {path}"
        assert operation.get("summary") and operation.get("description"), where
        codes = set(operation["responses"])
        assert {"200", "401", "403", "422", "500"} <= codes, where
        for code in codes - {"200"}:
            content = operation["responses"][code]["content"]
            schema = content["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (where, code)
    requeue = operations[("post", f"/{service}/v1/admin/outbox/{{seq}}/requeue")]
    assert {"400", "404", "409", "413", "415"} <= set(requeue["responses"])


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    app = _create(
        "intake",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/intake.db",
        log_json=False,
        log_level="WARNING",
        relay_background=False,
    )
    async with LifespanManager(app, startup_timeout=60):
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http, app.openapi()


async def test_the_outbox_routes_answer_only_documented_statuses(
    client: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, spec = client
    admin = {"Authorization": f"Bearer {_token('admin')}"}
    staff = {"Authorization": f"Bearer {_token('staff')}"}
    requeue = REQUEUE.format
    probes: list[tuple[str, str, dict[str, Any], int]] = [
        ("get", LIST, {}, 401),
        ("get", LIST, {"headers": staff}, 403),
        ("get", LIST, {"headers": admin}, 200),
        ("get", LIST, {"headers": admin, "params": {"status": "pending"}}, 200),
        ("get", LIST, {"headers": admin, "params": {"status": "lost"}}, 422),
        ("get", LIST, {"headers": admin, "params": {"limit": 0}}, 422),
        ("get", LIST, {"headers": admin, "params": {"limit": 10_000}}, 422),
        ("get", LIST, {"headers": admin, "params": {"limit": "many"}}, 422),
        ("post", requeue(seq=1), {}, 401),
        ("post", requeue(seq=1), {"headers": staff}, 403),
        ("post", requeue(seq=1), {"headers": admin}, 404),
        ("post", requeue(seq="abc"), {"headers": admin}, 422),
        ("post", requeue(seq=0), {"headers": admin}, 422),
        ("post", requeue(seq=-3), {"headers": admin}, 422),
        ("post", requeue(seq=2**70), {"headers": admin}, 422),
        ("post", requeue(seq=1), {"headers": {**admin, "Content-Type": "text/plain"}}, 415),
    ]
    operations = _outbox_operations(spec)
    for method, path, options, expected in probes:
        if method == "post" and "Content-Type" in options.get("headers", {}):
            options = {**options, "content": b"requeue please"}
        response = await http.request(method.upper(), path, **options)
        where = (method, path[:60], options.get("params"), response.text[:200])
        assert response.status_code == expected, where
        template = LIST if method == "get" else REQUEUE
        documented = operations[(method, template)]["responses"]
        assert str(response.status_code) in documented, where
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", where


def test_an_outbox_entry_shows_no_subject_nor_data() -> None:
    """An admin above a respondent reads the outbox too: a `case/<id>` subject would tell them
    the hidden case exists."""
    from upstander.kit.events import OutboxEntry

    fields = set(OutboxEntry.model_fields)
    assert "subject" not in fields and "data" not in fields
    assert {"seq", "event_id", "type", "status"} <= fields
