"""The audit trail keeps the conflict rules: an entry that names a case hidden from the reader
(restricted from them, or from the owner of the API client reading) is withheld — a
placeholder with only `seq`, `hash` and `prev_hash` in a listing of the whole trail, nothing
in a listing of that case — while verification still proves the whole chain, with counts
and positions only."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, auth
from fastapi import FastAPI

from upstander.cases.models import AuditEntry, Case
from upstander.cases.retention.service import delete_case
from upstander.kit.scopes import scopes_for_roles

AUDIT = "/cases/v1/audit"
VERIFY = "/cases/v1/audit/verify"
PLACEHOLDER_KEYS = {"seq", "hash", "prev_hash", "redacted"}


class Trail:
    """An org where `boss` (an auditor) manages `respondent`, who is named in `hidden`'s
    report; `visible` names nobody. Both cases have been read and messaged by `handler`."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.hidden = uuid.UUID(int=0)
        self.visible = uuid.UUID(int=0)

    async def build(self) -> Trail:
        org = self.org
        await org.person("boss", ["auditor"])
        await org.person("respondent", ["staff"], "boss")
        _, self.hidden = await org.report(involved=["respondent"], excluded=[])
        _, self.visible = await org.report(involved=[], excluded=[])
        for case_id in (self.hidden, self.visible):
            url = f"/cases/v1/cases/{case_id}"
            assert (await org.client.get(url, headers=org.headers("handler"))).status_code == 200
            sent = await org.client.post(
                f"{url}/messages", json={"body": "Hello"}, headers=org.headers("handler")
            )
            assert sent.status_code == 201, sent.text
        return self

    def boss(self) -> dict[str, str]:
        return self.org.headers("boss", ["auditor"])

    def auditor(self) -> dict[str, str]:
        """An auditor the hidden case is not hidden from."""
        return self.org.admin(["auditor"])

    def client(self, owner: uuid.UUID | None, roles: list[str] | None = None) -> dict[str, str]:
        claims: dict[str, Any] = {} if owner is None else {"owner": str(owner)}
        roles = roles or ["auditor"]
        token = self.org.mint(
            org=self.org.id,
            roles=roles,
            sub="cl_siem",
            typ="client",
            scope=" ".join(sorted(scopes_for_roles(roles))),
            **claims,
        )
        return auth(token)

    async def whole(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Every entry of the trail as `headers` reads it, page by page."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor is not None:
                params["cursor"] = cursor
            page = await self.org.client.get(AUDIT, params=params, headers=headers)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items


def names(entry: dict[str, Any], case_id: uuid.UUID) -> bool:
    return entry["case_id"] == str(case_id) or str(case_id) in str(entry["detail"])


@pytest.fixture
async def trail(client: httpx.AsyncClient, mint: Any, service_token: str) -> Trail:
    return await Trail(await Org(client, mint, service_token).build()).build()


async def test_an_auditor_above_the_respondent_gets_placeholders_for_the_hidden_case(
    trail: Trail,
) -> None:
    full = await trail.whole(trail.auditor())
    about_hidden = {e["seq"] for e in full if names(e, trail.hidden)}
    assert about_hidden, "the hidden case has entries to withhold"

    seen = await trail.whole(trail.boss())

    by_seq = {e["seq"]: e for e in seen}
    for seq in about_hidden:
        assert set(k for k, v in by_seq[seq].items() if v not in (None, {})) == PLACEHOLDER_KEYS
        assert by_seq[seq]["redacted"] is True
        assert by_seq[seq]["hash"] == next(e["hash"] for e in full if e["seq"] == seq)
    # Not the case id, not its actions, not its handlers: nothing about it anywhere.
    assert str(trail.hidden) not in str(seen)
    assert all(not e["redacted"] for e in seen if e["seq"] not in about_hidden)
    assert any(e["case_id"] == str(trail.visible) for e in seen)


async def test_a_listing_that_names_the_hidden_case_among_others_is_withheld(
    trail: Trail,
) -> None:
    full = await trail.whole(trail.auditor())
    listings = [
        e
        for e in full
        if e["action"] == "case.list" and str(trail.hidden) in e["detail"]["case_ids"]
    ]
    assert listings and all(e["case_id"] is None for e in listings)

    seen = {e["seq"]: e for e in await trail.whole(trail.boss())}

    assert all(seen[e["seq"]]["redacted"] for e in listings)


async def test_the_hidden_case_s_trail_reads_as_an_unknown_case_s(trail: Trail) -> None:
    hidden = await trail.org.client.get(
        AUDIT, params={"case_id": str(trail.hidden), "limit": 1}, headers=trail.boss()
    )
    unknown = await trail.org.client.get(
        AUDIT, params={"case_id": str(uuid.uuid4()), "limit": 1}, headers=trail.boss()
    )
    unrestricted = await trail.org.client.get(
        AUDIT, params={"case_id": str(trail.hidden), "limit": 1}, headers=trail.auditor()
    )

    assert hidden.status_code == unknown.status_code == 200
    assert hidden.json() == unknown.json() == {"items": [], "next_cursor": None}
    assert unrestricted.json()["items"] and unrestricted.json()["next_cursor"] is not None


async def test_the_visible_case_s_trail_stays_readable_to_the_restricted_auditor(
    trail: Trail,
) -> None:
    response = await trail.org.client.get(
        AUDIT, params={"case_id": str(trail.visible)}, headers=trail.boss()
    )

    actions = [e["action"] for e in response.json()["items"]]
    assert "case.read" in actions and "message.create" in actions
    assert not any(e["redacted"] for e in response.json()["items"])


async def test_the_chain_is_verifiable_without_revealing_the_hidden_entries(
    trail: Trail,
) -> None:
    seen = await trail.whole(trail.boss())
    verified = await trail.org.client.get(VERIFY, headers=trail.boss())

    # The placeholders keep every link: the chain can be followed end to end.
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(seen))
    # Verification covers the whole chain (the listing itself was audited once more).
    assert verified.json() == {"intact": True, "entries": len(seen) + 1, "first_broken": None}


async def test_a_broken_hidden_entry_is_reported_by_position_only(
    app: FastAPI, trail: Trail
) -> None:
    full = await trail.whole(trail.auditor())
    target = next(e for e in full if e["case_id"] == str(trail.hidden))
    table = AuditEntry.__table__
    async with app.state.engine.begin() as connection:
        # Core, not the ORM (which refuses changes): as someone with database access would.
        await connection.execute(
            table.update()
            .where(table.c.id == uuid.UUID(target["id"]))
            .values(action="case.nothing")
        )

    restricted = (await trail.org.client.get(VERIFY, headers=trail.boss())).json()
    unrestricted = (await trail.org.client.get(VERIFY, headers=trail.auditor())).json()

    assert restricted["intact"] is False and unrestricted["intact"] is False
    assert restricted["first_broken"] == {"seq": target["seq"], "id": None}
    assert unrestricted["first_broken"] == {"seq": target["seq"], "id": target["id"]}


async def test_a_client_reads_the_trail_as_its_owner(trail: Trail) -> None:
    owned_by_boss = await trail.whole(trail.client(trail.org.boss))
    boss = await trail.whole(trail.boss())

    # The same entries withheld (the boss's own listing adds the client's `audit.read`).
    assert [e["redacted"] for e in owned_by_boss] == [
        e["redacted"] for e in boss[: len(owned_by_boss)]
    ]
    assert any(e["redacted"] for e in owned_by_boss)
    assert str(trail.hidden) not in str(owned_by_boss)


async def test_a_client_nobody_owns_or_whose_owner_may_not_audit_reads_placeholders_only(
    trail: Trail,
) -> None:
    ownerless = await trail.whole(trail.client(None))
    owned_by_staff = await trail.whole(trail.client(trail.org.respondent))

    for seen in (ownerless, owned_by_staff):
        assert seen and all(e["redacted"] for e in seen)
        assert all(e["action"] is None and e["actor_id"] is None for e in seen)


async def test_a_deleted_case_s_history_is_withheld_but_its_deletion_record(
    app: FastAPI, trail: Trail
) -> None:
    async with app.state.sessionmaker() as session:
        case = await session.get_one(Case, trail.visible)
        await delete_case(session, case, vault=app.state.vault, now=app.state.clock.now())
        await session.commit()

    response = await trail.org.client.get(
        AUDIT, params={"case_id": str(trail.visible)}, headers=trail.auditor()
    )

    assert [e["action"] for e in response.json()["items"]] == ["case.deleted"]
