"""Keyset cursors: pages over a real SQLite table, and every cursor the platform did not make
(bad base64, bad JSON, wrong shape, a time without a zone, wrong id type, absurd length) is a
400 `invalid-cursor` problem, never a 500 — in the kit and on the services' paginated routes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI
from helpers import TokenMinter
from pydantic import BaseModel
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.app import ServiceSpec, create_service_app, make_router
from upstander.kit.clock import FrozenClock
from upstander.kit.db import (
    Base,
    IdMixin,
    TimestampMixin,
    get_session,
    make_engine,
    make_metadata,
    make_sessionmaker,
)
from upstander.kit.pagination import (
    MAX_CURSOR_LENGTH,
    InvalidCursor,
    Page,
    PageParams,
    decode_cursor,
    decode_ranked_cursor,
    encode_cursor,
    page_params,
    paginate,
)
from upstander.kit.settings import KitSettings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROW = "1b0c7e52-6a55-4d2e-9a8e-3f1c1f0e2a11"
INVALID_CURSOR = "https://upstander.dev/problems/invalid-cursor"


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


class Item(IdMixin, TimestampMixin, Model):
    __tablename__ = "items"

    name: Mapped[str] = mapped_column(String(40))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_of(value: Any) -> str:
    return b64(json.dumps(value).encode())


# Each cursor here is one way to be malformed; every one must be a 400 `invalid-cursor`.
MALFORMED: dict[str, str] = {
    "naive-timestamp": cursor_of(["2026-03-02T09:00:00", ROW]),
    "naive-date-only": cursor_of(["2026-03-02", ROW]),
    "not-base64": "@@not*base64!!",
    "base64-of-plain-text": "QUJDRE",  # "ABCD"
    "not-ascii": "ÿÿÿÿ",
    "one-character": "A",
    "not-json": b64(b"{not json"),
    "not-utf8": b64(b"\xff\xfe\xfd\xfc"),
    "json-object": cursor_of({"created": "2026-03-02T09:00:00+00:00", "id": ROW}),
    "json-string": cursor_of("2026-03-02T09:00:00+00:00"),
    "json-number": cursor_of(42),
    "json-null": cursor_of(None),
    "one-element": cursor_of(["2026-03-02T09:00:00+00:00"]),
    "three-elements": cursor_of(["2026-03-02T09:00:00+00:00", ROW, 1]),
    "time-as-number": cursor_of([1772442000, ROW]),
    "time-null": cursor_of([None, ROW]),
    "time-garbage": cursor_of(["yesterday", ROW]),
    "time-out-of-range": cursor_of(["0001-01-01T00:00:00+01:00", ROW]),
    "id-as-number": cursor_of(["2026-03-02T09:00:00+00:00", 12345]),
    "id-null": cursor_of(["2026-03-02T09:00:00+00:00", None]),
    "id-not-uuid": cursor_of(["2026-03-02T09:00:00+00:00", "row-7"]),
    "id-as-list": cursor_of(["2026-03-02T09:00:00+00:00", [ROW]]),
    "absurd-length": cursor_of(["2026-03-02T09:00:00+00:00", ROW, "x" * 5000]),
    "just-over-the-limit": "A" * (MAX_CURSOR_LENGTH + 1),
}


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[AsyncSession]:
    """A real SQLite file with seven items a minute apart (two sharing a time)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/items.db")
    async with engine.begin() as connection:
        await connection.run_sync(Model.metadata.create_all)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        for index in range(7):
            at = START + timedelta(minutes=min(index, 5))  # items 5 and 6 share a time
            session.add(Item(name=f"item-{index}", created_at=at, updated_at=at))
        await session.commit()
        yield session
    await engine.dispose()


async def all_pages(session: AsyncSession, *, descending: bool) -> list[str]:
    names: list[str] = []
    cursor: str | None = None
    while True:
        rows, cursor = await paginate(
            session,
            select(Item),
            Item,
            PageParams(limit=3, cursor=cursor),
            descending=descending,
        )
        names.extend(row.name for row in rows)
        if cursor is None:
            return names


async def test_pages_cover_every_row_once_in_order_both_ways(session: AsyncSession) -> None:
    ascending = await all_pages(session, descending=False)
    descending = await all_pages(session, descending=True)
    assert sorted(ascending) == [f"item-{i}" for i in range(7)]
    assert len(set(ascending)) == 7
    assert ascending[:5] == [f"item-{i}" for i in range(5)]
    assert descending == list(reversed(ascending))


async def test_a_cursor_with_another_utc_offset_is_the_same_instant(
    session: AsyncSession,
) -> None:
    third = (await session.scalars(select(Item).where(Item.name == "item-2"))).one()
    cursors = [encode_cursor(third.created_at, third.id)] + [
        cursor_of([third.created_at.astimezone(timezone(offset)).isoformat(), str(third.id)])
        for offset in (timedelta(hours=2), timedelta(hours=-5, minutes=-30))
    ]
    pages = [
        [row.name for row in (await paginate(session, select(Item), Item, PageParams(cursor=c)))[0]]
        for c in cursors
    ]
    # Items 5 and 6 share a time: their order is their (random) ids', the same on every page.
    assert pages[0] == pages[1] == pages[2]
    assert pages[0][:2] == ["item-3", "item-4"] and sorted(pages[0][2:]) == ["item-5", "item-6"]


@pytest.mark.parametrize("cursor", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_cursor_is_an_invalid_cursor_error_before_any_query(
    session: AsyncSession, cursor: str
) -> None:
    with pytest.raises(InvalidCursor) as caught:
        await paginate(session, select(Item), Item, PageParams(cursor=cursor))
    assert caught.value.status == 400
    assert caught.value.slug == "invalid-cursor"
    # The session is still usable: nothing half-ran in the database.
    assert len((await session.scalars(select(Item))).all()) == 7


def test_decode_cursor_reads_back_what_encode_cursor_wrote() -> None:
    row_id = uuid.uuid4()
    assert decode_cursor(encode_cursor(START, row_id)) == (START, row_id)


@pytest.mark.parametrize(
    "value",
    [
        [0, "2026-03-02T09:00:00+00:00", ROW],
        [1, "2026-03-02T11:00:00+02:00", ROW],
    ],
)
def test_a_ranked_cursor_reads_its_rank_time_and_id(value: list[Any]) -> None:
    rank, at, row_id = decode_ranked_cursor(cursor_of(value), (0, 1))
    assert (rank, at, row_id) == (value[0], START, uuid.UUID(ROW))
    assert at.tzinfo == UTC


@pytest.mark.parametrize(
    "value",
    [
        [2, "2026-03-02T09:00:00+00:00", ROW],
        [True, "2026-03-02T09:00:00+00:00", ROW],
        ["0", "2026-03-02T09:00:00+00:00", ROW],
        [0.0, "2026-03-02T09:00:00+00:00", ROW],
        [0, "2026-03-02T09:00:00", ROW],
        [0, "2026-03-02T09:00:00+00:00", 7],
        ["2026-03-02T09:00:00+00:00", ROW],
    ],
    ids=["rank-unknown", "rank-bool", "rank-string", "rank-float", "naive", "id-int", "short"],
)
def test_a_malformed_ranked_cursor_is_an_invalid_cursor_error(value: list[Any]) -> None:
    with pytest.raises(InvalidCursor):
        decode_ranked_cursor(cursor_of(value), (0, 1))


# ----------------------------------------------------------------------------- over HTTP


class ItemOut(BaseModel):
    name: str


def _kit_app(database_url: str) -> FastAPI:
    router = make_router("/demo/v1", tags=["demo"])

    @router.get(
        "/items",
        operation_id="list_items",
        summary="Items",
        description="A page of items.",
        response_model=Page[ItemOut],
    )
    async def list_items(
        params: PageParams = Depends(page_params), session: AsyncSession = Depends(get_session)
    ) -> Page[ItemOut]:
        rows, next_cursor = await paginate(session, select(Item), Item, params)
        return Page[ItemOut](items=[ItemOut(name=r.name) for r in rows], next_cursor=next_cursor)

    settings = KitSettings(
        database_url=database_url, log_json=False, log_level="WARNING", relay_background=False
    )
    spec = ServiceSpec(name="demo", title="Demo", description="A kit app.", routers=[router])
    return create_service_app(settings, spec)


async def test_a_kit_route_answers_every_malformed_cursor_with_a_400_problem(
    tmp_path: Path,
) -> None:
    app = _kit_app(f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    async with LifespanManager(app):
        async with app.state.engine.begin() as connection:
            await connection.run_sync(Model.metadata.create_all)
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            fine = await client.get("/demo/v1/items")
            answers = {
                name: await client.get("/demo/v1/items", params={"cursor": cursor})
                for name, cursor in MALFORMED.items()
            }
    assert fine.status_code == 200
    for name, response in answers.items():
        assert response.status_code == 400, (name, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json", name
        assert response.json()["type"] == INVALID_CURSOR, name
    parameters = app.openapi()["paths"]["/demo/v1/items"]["get"]["parameters"]
    [cursor_parameter] = [p for p in parameters if p["name"] == "cursor"]
    assert "maxLength" in json.dumps(cursor_parameter["schema"])


# ----------------------------------------------------------------------------- the services

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# Signs tokens as the gateway does and serves its JWKS to the services.
MINTER = TokenMinter()
NAIVE = MALFORMED["naive-timestamp"]
NAIVE_RANKED = cursor_of([1, "2026-03-02T09:00:00", ROW])
XAPI = {"X-Experience-API-Version": "1.0.3"}

# (path, cursor, extra headers) per service: every paginated route shape, the reporter's
# own (kit) pages aside, which share `paginate` with the cases routes tried here.
ROUTES: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "gateway": [
        ("/identity/v1/people", NAIVE, {}),
        ("/identity/v1/clients", NAIVE, {}),
    ],
    "cases": [
        ("/cases/v1/cases", NAIVE, {}),
        ("/cases/v1/audit", "²", {}),
        ("/cases/v1/audit", "9" * 400, {}),
    ],
    "training": [
        ("/training/v1/people", NAIVE, {}),
        ("/training/v1/courses", NAIVE, {}),
        ("/training/v1/compliance", NAIVE_RANKED, {}),
        ("/training/v1/compliance", "x" * 1000, {}),
        ("/training/v1/xapi/statements", NAIVE, XAPI),
    ],
    "notify": [
        ("/notify/v1/inbox", NAIVE, {}),
        ("/notify/v1/webhooks", NAIVE, {}),
    ],
}


def _settings(service: str, directory: Path) -> Any:
    module = __import__(f"upstander.{service}.settings", fromlist=["Settings"])
    extra: dict[str, dict[str, Any]] = {
        "gateway": {"bootstrap_demo": False},
        "cases": {"deadline_scheduler_background": False},
        "training": {"reminders_background": False},
        "notify": {"notify_worker_background": False, "mail_dir": str(directory / "mail")},
    }
    return module.Settings(
        database_url=f"sqlite+aiosqlite:///{directory / service}.db",
        log_json=False,
        log_level="WARNING",
        relay_background=False,
        **extra.get(service, {}),
    )


@asynccontextmanager
async def running(service: str, directory: Path) -> AsyncIterator[FastAPI]:
    module = __import__(f"upstander.{service}.app", fromlist=["create_app"])
    app: FastAPI = module.create_app(
        _settings(service, directory), transport=MINTER.transport(), clock=FrozenClock(NOW)
    )
    async with LifespanManager(app, startup_timeout=60):
        yield app


async def _admin_token(service: str, app: FastAPI) -> str:
    token = MINTER.mint(
        org=uuid.uuid4(), roles=["admin", "auditor", "reviewer", "trainer"], issued_at=NOW
    )
    if service != "gateway":
        return token
    # The gateway verifies with its own keys: the same claims, signed by it.
    claims = jwt.decode(token, options={"verify_signature": False})
    kid, key = await app.state.key_store.signing_key()
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


@pytest.mark.parametrize("service", list(ROUTES))
async def test_paginated_routes_answer_a_naive_timestamp_cursor_with_400(
    service: str, tmp_path: Path
) -> None:
    async with running(service, tmp_path) as app:
        token = await _admin_token(service, app)
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = []
            for path, cursor, headers in ROUTES[service]:
                auth = {"Authorization": f"Bearer {token}", **headers}
                plain = await client.get(path, headers=auth)
                bad = await client.get(path, params={"cursor": cursor}, headers=auth)
                answers.append((path, cursor[:12], plain, bad))
    for path, cursor, plain, bad in answers:
        assert plain.status_code == 200, (path, plain.text)
        assert bad.status_code == 400, (path, cursor, bad.status_code, bad.text)
        assert bad.headers["content-type"] == "application/problem+json", path
        assert bad.json()["type"] == INVALID_CURSOR, (path, bad.json())
