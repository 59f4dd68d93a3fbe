"""The matching escrow in intake (docs/escrow.md): identifiers normalised and matched by blind
indexes, independence, per-org threshold, release and withdrawal, expiry, rate limits, and
that nothing reveals an entry before release (marker scan over the database and the logs)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, text

from upstander.gateway.edge import install_rate_limits
from upstander.intake.escrow import identifiers as ids
from upstander.intake.escrow.models import EscrowEntry, EscrowIdentifier
from upstander.intake.forms.service import ensure_org
from upstander.intake.models import DataKey, Model, Outbox, Report
from upstander.intake.settings import Settings
from upstander.kit.clock import FrozenClock
from upstander.kit.errors import install_problem_handlers
from upstander.kit.settings import KitSettings

ESCROW = "/intake/v1/escrow"
STATE = "/intake/v1/reporter/escrow"
RELEASE = "/intake/v1/reporter/escrow/release"
WITHDRAW = "/intake/v1/reporter/escrow/withdraw"
SETTINGS = "/intake/v1/escrow-settings"
VERIFY = "/intake/internal/receipts/verify"
EVENTS = "/intake/internal/events"
SLUG = "demo"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(app: FastAPI, slug: str = SLUG) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with app.state.sessionmaker() as session:
        await ensure_org(session, org_id, slug, slug.title())
        await session.commit()
    return org_id


async def person(
    client: httpx.AsyncClient, service_token: str, org_id: uuid.UUID, email: str
) -> uuid.UUID:
    """A directory person with a work email, as the gateway announces them."""
    person_id = uuid.uuid4()
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/gateway",
        "type": "upstander.person.created",
        "subject": f"person/{person_id}",
        "time": datetime(2026, 11, 24, tzinfo=UTC).isoformat(),
        "orgid": str(org_id),
        "data": {
            "person_id": str(person_id),
            "org_id": str(org_id),
            "email": email,
            "name": "Ana Diaz",
            "roles": ["staff"],
            "active": True,
        },
    }
    response = await client.post(
        EVENTS,
        content=json.dumps(event),
        headers={**auth(service_token), "content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 200, response.text
    return person_id


def entry(*identifiers: dict[str, Any], org: str = SLUG, **report: Any) -> dict[str, Any]:
    return {
        "org": org,
        "identifiers": list(identifiers),
        "report": {"description": "He kept touching my shoulders.", **report},
    }


class Reporter:
    """One escrow reporter: their receipt code, opened as the gateway's `/auth/receipt` does
    (intake's receipt check, then a reporter token for what it opens)."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = auth(token)

    async def get(self) -> dict[str, Any]:
        response = await self.client.get(STATE, headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def status(self) -> str:
        return str((await self.get())["status"])


@pytest.fixture
def hold(client: httpx.AsyncClient, mint_service: Any, mint_reporter: Any) -> Any:
    async def place(body: dict[str, Any], headers: dict[str, str] | None = None) -> Reporter:
        response = await client.post(ESCROW, json=body, headers=headers or {})
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["status"] == "waiting"
        assert response.headers["cache-control"] == "no-store"
        opened = await client.post(
            VERIFY,
            json={"org": body["org"], "receipt_code": created["receipt_code"]},
            headers=auth(mint_service("gateway")),
        )
        assert opened.status_code == 200, opened.text
        found = opened.json()
        assert found["report_id"] == created["escrow_id"]
        reporter = Reporter(
            client, mint_reporter(uuid.UUID(found["report_id"]), uuid.UUID(found["org_id"]))
        )
        reporter.code = created["receipt_code"]  # type: ignore[attr-defined]
        reporter.id = uuid.UUID(created["escrow_id"])  # type: ignore[attr-defined]
        return reporter

    return place


# ----------------------------------------------------------------------------- normal forms


def test_identifiers_normalise_case_spacing_and_separators() -> None:
    assert ids.normalise("email", "  Ana.Diaz @Example.ORG ") == "ana.diaz@example.org"
    assert ids.normalise("phone", "+1 (555) 010-2030") == "+15550102030"
    assert ids.normalise("phone", "001 555.010.2030") == "+15550102030"
    assert ids.normalise("handle", "@Ana_D ", "X") == "x:ana_d"
    person_id = uuid.uuid4()
    assert ids.normalise("person", str(person_id).upper()) == str(person_id)
    for kind, value in [("email", "nobody"), ("phone", "12"), ("person", "x"), ("handle", "a b!")]:
        with pytest.raises(ValueError):
            ids.normalise(kind, value, "x")


def test_a_blind_index_needs_the_key() -> None:
    one = ids.blind_index("key-one", "email", "ana@example.org")
    assert one == ids.blind_index("key-one", "email", "ana@example.org")
    assert one != ids.blind_index("key-two", "email", "ana@example.org")
    assert "ana" not in one


def test_production_refuses_the_development_escrow_and_signing_keys() -> None:
    secrets = {
        "mode": "production",
        "kek": "prod:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
        "service_secret": "s" * 32,
        "receipt_key": "r" * 32,
    }
    with pytest.raises(ValidationError, match="UPSTANDER_ESCROW_INDEX_KEY"):
        Settings(**secrets, record_signing_key="c2lnbmluZy1rZXktb2YtcHJvZHVjdGlvbi0zMmJ5dGU=")
    with pytest.raises(ValidationError, match="UPSTANDER_RECORD_SIGNING_KEY"):
        Settings(**secrets, escrow_index_key="e" * 32)
    Settings(
        **secrets,
        escrow_index_key="e" * 32,
        record_signing_key="c2lnbmluZy1rZXktb2YtcHJvZHVjdGlvbi0zMmJ5dGU=",
    )


# ----------------------------------------------------------------------------- matching


async def test_two_reporters_naming_one_person_in_different_forms_match(
    app: FastAPI, client: httpx.AsyncClient, hold: Any, mint_service: Any
) -> None:
    org_id = await register(app)
    ana = await person(client, mint_service("gateway"), org_id, "ana.diaz@example.org")

    first = await hold(entry({"kind": "email", "value": "  Ana.Diaz @Example.ORG "}))
    assert await first.status() == "waiting"
    second = await hold(entry({"kind": "person", "value": str(ana).upper()}))

    assert await first.status() == "matched"
    assert await second.status() == "matched"
    state = await first.get()
    assert state["matched_at"] is not None and state["report_id"] is None
    assert "release" in state["message"]


async def test_phones_and_handles_match_whatever_their_spacing(app: FastAPI, hold: Any) -> None:
    await register(app)
    a = await hold(entry({"kind": "phone", "value": "+1 (555) 010-2030"}))
    b = await hold(entry({"kind": "phone", "value": "001 555 010 2030"}))
    c = await hold(entry({"kind": "handle", "platform": "X", "value": "@Boss_Man"}))
    d = await hold(entry({"kind": "handle", "platform": "x", "value": "boss_man "}))

    assert [await r.status() for r in (a, b, c, d)] == ["matched"] * 4


async def test_an_email_named_before_the_directory_knew_it_matches_once_it_does(
    app: FastAPI, client: httpx.AsyncClient, hold: Any, mint_service: Any
) -> None:
    org_id = await register(app)
    first = await hold(entry({"kind": "email", "value": "late@example.org"}))
    person_id = uuid.uuid4()
    second = await hold(entry({"kind": "person", "value": str(person_id)}))
    assert await first.status() == "waiting"

    # The person event arrives: the email is theirs.
    event_person = await person(client, mint_service("gateway"), org_id, "LATE@example.org")
    third = await hold(entry({"kind": "person", "value": str(event_person)}))

    assert await first.status() == "matched"
    assert await third.status() == "matched"
    assert await second.status() == "waiting"


async def test_entries_naming_different_people_do_not_match(app: FastAPI, hold: Any) -> None:
    await register(app)
    a = await hold(entry({"kind": "email", "value": "ana@example.org"}))
    b = await hold(entry({"kind": "email", "value": "bea@example.org"}))
    c = await hold(entry({"kind": "phone", "value": "+1 555 010 2030"}))

    assert [await r.status() for r in (a, b, c)] == ["waiting"] * 3


async def test_one_reporter_naming_the_same_person_twice_does_not_match_themselves(
    app: FastAPI, hold: Any, mint: Any
) -> None:
    org_id = await register(app)
    me = auth(mint(org=org_id, roles=["staff"]))
    target = {"kind": "email", "value": "boss@example.org"}

    first = await hold(entry(target), headers=me)
    second = await hold(entry({**target, "value": "BOSS@example.org"}), headers=me)
    assert [await first.status(), await second.status()] == ["waiting", "waiting"]

    # A confidential reporter's contact keeps them from matching themselves too.
    contact = {"name": "Jo", "contact": "jo@example.org"}
    third = await hold(entry(target, reporter=contact))
    fourth = await hold(entry(target, reporter={**contact, "contact": " JO@example.org"}))
    # ...but two distinct reporters (the staff member and Jo) do match.
    assert await first.status() == "matched"
    assert await fourth.status() == "matched"
    assert await third.status() == "matched"


async def test_an_entry_cannot_name_its_own_reporter(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    org_id = await register(app)
    token = mint(org=org_id, roles=["staff"])
    me = token_subject(token)

    response = await client.post(
        ESCROW, json=entry({"kind": "person", "value": me}), headers=auth(token)
    )

    assert response.status_code == 422, response.text
    assert me not in response.text.replace(f'"{me}"', "")  # never echoed back as a value


def token_subject(token: str) -> str:
    import base64

    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


async def test_the_threshold_is_per_organisation(
    app: FastAPI, client: httpx.AsyncClient, hold: Any, mint: Any
) -> None:
    org_id = await register(app)
    admin = auth(mint(org=org_id, roles=["admin"]))
    assert (await client.get(SETTINGS, headers=admin)).json() == {
        "threshold": 2,
        "expiry_days": 365,
    }
    staff = await client.put(
        SETTINGS,
        json={"threshold": 3, "expiry_days": 30},
        headers=auth(mint(org=org_id, roles=["staff"])),
    )
    assert staff.status_code == 403
    put = await client.put(SETTINGS, json={"threshold": 3, "expiry_days": 30}, headers=admin)
    assert put.status_code == 200, put.text
    target = {"kind": "email", "value": "boss@example.org"}

    a, b = await hold(entry(target)), await hold(entry(target))
    assert [await a.status(), await b.status()] == ["waiting", "waiting"]
    c = await hold(entry(target))
    assert [await r.status() for r in (a, b, c)] == ["matched"] * 3
    assert (
        await client.put(SETTINGS, json={"threshold": 1, "expiry_days": 30}, headers=admin)
    ).status_code == 422


async def test_invalid_identifiers_are_refused_without_echoing_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app)
    response = await client.post(
        ESCROW, json=entry({"kind": "email", "value": "secret-name-not-an-email"})
    )

    assert response.status_code == 422, response.text
    assert "secret-name" not in response.text
    assert response.json()["errors"][0]["field"] == "body.identifiers.0.value"
    assert (await client.post(ESCROW, json=entry())).status_code == 422  # none at all
    assert (
        await client.post(ESCROW, json=entry({"kind": "email", "value": "a@b.org"}, org="nope"))
    ).status_code == 404


async def test_new_entries_are_rate_limited_per_organisation(
    app: FastAPI, client: httpx.AsyncClient, hold: Any
) -> None:
    await register(app)
    app.state.escrow.max_per_org_per_day = 2
    await hold(entry({"kind": "email", "value": "a@example.org"}))
    await hold(entry({"kind": "email", "value": "b@example.org"}))

    response = await client.post(ESCROW, json=entry({"kind": "email", "value": "c@example.org"}))

    assert response.status_code == 429, response.text
    assert response.headers["retry-after"]


# ----------------------------------------------------------------------------- release, withdrawal


async def test_release_makes_a_report_linked_to_the_match_and_naming_the_subject(
    app: FastAPI, client: httpx.AsyncClient, hold: Any, mint_service: Any
) -> None:
    org_id = await register(app)
    ana = await person(client, mint_service("gateway"), org_id, "ana.diaz@example.org")
    first = await hold(entry({"kind": "email", "value": "ana.diaz@example.org"}))
    early = await client.post(RELEASE, headers=first.headers, json={"mode": "anonymous"})
    assert early.status_code == 409, early.text  # nobody else yet
    second = await hold(
        entry(
            {"kind": "person", "value": str(ana)},
            reporter={"name": "Jo", "contact": "jo@example.org"},
        )
    )

    one = await client.post(RELEASE, headers=first.headers, json={"mode": "anonymous"})
    assert one.status_code == 200, one.text
    assert one.json()["status"] == "released"
    assert one.json()["report_id"] == str(first.id)
    two = await client.post(RELEASE, headers=second.headers, json={"mode": "confidential"})
    assert two.status_code == 200, two.text
    again = await client.post(RELEASE, headers=second.headers, json={"mode": "anonymous"})
    assert again.status_code == 409

    async with app.state.sessionmaker() as session:
        rows = (await session.scalars(select(Outbox).order_by(Outbox.seq))).all()
        reports = {r.id: r for r in (await session.scalars(select(Report))).all()}
    events = [
        app.state.events.envelope(row)["data"]
        for row in rows
        if row.type.startswith("upstander.report")
    ]
    assert [e["report_id"] for e in events] == [str(first.id), str(second.id)]
    assert "linked_report_ids" not in events[0]
    assert events[1]["linked_report_ids"] == [str(first.id)]
    for data in events:
        assert {"person_id": str(ana), "role": "subject", "name": None} in data["people_involved"]
    assert events[1]["mode"] == "confidential"
    assert events[1]["reporter"] == {"name": "Jo", "contact": "jo@example.org"}
    assert reports[first.id].mode == "anonymous"
    # The receipt code now opens the report (the reporter's token follows it to the case).
    opened = await client.post(
        VERIFY, json={"org": SLUG, "receipt_code": first.code}, headers=auth(mint_service())
    )
    assert opened.json()["report_id"] == str(first.id)
    assert (await first.get())["status"] == "released"
    # Files come after release, with the same token, as for any report.
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
    attached = await client.post(
        "/intake/v1/reporter/attachments",
        files={"file": ("photo.png", png, "image/png")},
        headers=first.headers,
    )
    assert attached.status_code == 201, attached.text
    assert attached.json()["report_id"] == str(first.id)


async def test_only_an_entry_made_with_a_staff_token_is_released_identified(
    app: FastAPI, client: httpx.AsyncClient, hold: Any, mint: Any
) -> None:
    org_id = await register(app)
    target = {"kind": "email", "value": "boss@example.org"}
    staff = await hold(entry(target), headers=auth(mint(org=org_id, roles=["staff"])))
    anonymous = await hold(entry(target))

    refused = await client.post(RELEASE, headers=anonymous.headers, json={"mode": "identified"})
    no_contact = await client.post(
        RELEASE, headers=anonymous.headers, json={"mode": "confidential"}
    )
    released = await client.post(RELEASE, headers=staff.headers, json={"mode": "identified"})

    assert refused.status_code == 403, refused.text
    assert no_contact.status_code == 422, no_contact.text
    assert released.status_code == 200, released.text
    async with app.state.sessionmaker() as session:
        report = await session.get(Report, staff.id)
    assert report is not None and report.mode == "identified"
    assert report.receipt_lookup is None


async def test_withdrawal_removes_the_entry(
    app: FastAPI, client: httpx.AsyncClient, hold: Any
) -> None:
    await register(app)
    target = {"kind": "email", "value": "boss@example.org"}
    gone = await hold(entry(target, description="withdrawn words"))

    withdrawn = await client.post(WITHDRAW, headers=gone.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert (await client.post(WITHDRAW, headers=gone.headers)).json()["status"] == "withdrawn"
    assert (await client.post(RELEASE, headers=gone.headers, json={})).status_code == 409

    async with app.state.sessionmaker() as session:
        row = await session.get(EscrowEntry, gone.id)
        names = (
            await session.scalars(
                select(EscrowIdentifier).where(EscrowIdentifier.entry_id == gone.id)
            )
        ).all()
        key = await session.get(DataKey, gone.id)
    assert row is not None and row.content is None and row.status == "withdrawn"
    assert names == [] and key is None
    # It never matches again.
    later = await hold(entry(target))
    assert await later.status() == "waiting"


async def test_a_released_entry_cannot_be_withdrawn(
    app: FastAPI, client: httpx.AsyncClient, hold: Any
) -> None:
    await register(app)
    target = {"kind": "email", "value": "boss@example.org"}
    a, _ = await hold(entry(target)), await hold(entry(target))
    assert (await client.post(RELEASE, headers=a.headers, json={})).status_code == 200

    assert (await client.post(WITHDRAW, headers=a.headers)).status_code == 409


async def test_entries_expire_after_the_organisation_s_period(
    app: FastAPI, client: httpx.AsyncClient, hold: Any, mint: Any, clock: Any
) -> None:
    org_id = await register(app)
    await client.put(
        SETTINGS,
        json={"threshold": 2, "expiry_days": 10},
        headers=auth(mint(org=org_id, roles=["admin"])),
    )
    target = {"kind": "email", "value": "boss@example.org"}
    old = await hold(entry(target))
    clock.advance(timedelta(days=11))

    assert await old.status() == "expired"
    fresh = await hold(entry(target))
    assert await fresh.status() == "waiting"
    async with app.state.sessionmaker() as session:
        assert await session.get(DataKey, old.id) is None


async def test_another_report_s_token_does_not_open_an_escrow_entry(
    app: FastAPI, client: httpx.AsyncClient, mint_reporter: Any
) -> None:
    org_id = await register(app)
    response = await client.get(STATE, headers=auth(mint_reporter(uuid.uuid4(), org_id)))
    assert response.status_code == 404


# ----------------------------------------------------------------------------- nothing leaks


async def database_bytes(app: FastAPI) -> bytes:
    """Every row of every intake table, as raw bytes (binary columns as stored)."""
    out = bytearray()
    async with app.state.engine.connect() as conn:
        for table in Model.metadata.sorted_tables:
            rows = (await conn.execute(text(f'SELECT * FROM "{table.name}"'))).all()
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        out += bytes(value)
                    else:
                        out += str(value).encode()
                    out += b"|"
    return bytes(out)


async def test_before_release_nothing_reveals_an_entry(
    app: FastAPI,
    client: httpx.AsyncClient,
    hold: Any,
    mint: Any,
    caplog: pytest.LogCaptureFixture,
    database_url: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    org_id = await register(app)
    marker = f"marker{uuid.uuid4().hex[:12]}"
    email = f"{marker}@example.org"
    a = await hold(entry({"kind": "email", "value": email}, description=f"{marker} story"))
    b = await hold(entry({"kind": "email", "value": email.upper()}, description=f"{marker} too"))
    assert await a.status() == "matched"

    # No event (so no webhook, notice or case), nothing for the organisation to read.
    async with app.state.sessionmaker() as session:
        assert (await session.scalars(select(Outbox))).all() == []
        assert (await session.scalars(select(Report))).all() == []
    admin = auth(mint(org=org_id, roles=["admin"]))
    assert (await client.get(SETTINGS, headers=admin)).json() == {
        "threshold": 2,
        "expiry_days": 365,
    }
    for path in ("/intake/v1/escrow", "/intake/v1/escrow/entries", f"/intake/v1/escrow/{a.id}"):
        assert (await client.get(path, headers=admin)).status_code in (404, 405)
    # The database holds neither the words nor the name, in any table, nor the codes.
    raw = await database_bytes(app)
    for secret in (marker, email, a.code, b.code):
        assert secret.encode() not in raw
        assert secret.lower().encode() not in raw
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with open(path, "rb") as handle:
            assert marker.encode() not in handle.read()
    # No log line names the entry, the person, the words or the code.
    logged = "\n".join(
        f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records
    )
    for secret in (marker, a.code, b.code, str(a.id), str(b.id)):
        assert secret not in logged


# ----------------------------------------------------------------------------- the gateway's limit


class _EdgeSettings(KitSettings):
    auth_rate_limit_per_minute: int = 3


async def test_the_gateway_limits_escrow_and_record_requests_per_source() -> None:
    """Guessing who is named (or a record code) through the gateway is limited per source,
    like `/auth/`: a standalone app with the gateway's rate limits, nothing behind it."""
    app = FastAPI()
    app.state.clock = FrozenClock()
    install_problem_handlers(app)

    @app.post("/intake/v1/escrow")
    @app.post("/intake/v1/records/read")
    async def accepted() -> dict[str, str]:
        return {"ok": "yes"}

    install_rate_limits(app, _EdgeSettings())

    def source(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")

    async with source("203.0.113.7") as guesser, source("198.51.100.2") as other:
        statuses = [(await guesser.post(ESCROW)).status_code for _ in range(3)]
        refused = await guesser.post(ESCROW)
        records = await guesser.post("/intake/v1/records/read")
        elsewhere = await other.post(ESCROW)

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert records.status_code == 429
    assert elsewhere.status_code == 200
