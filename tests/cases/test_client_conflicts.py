"""API clients keep the conflict rules: a client sees the intersection of what its own roles
open and what the person who registered it (its tokens' `owner` claim) may see. The owner's
restrictions (involved, excluded, chain, recused) bind the client, the owner's own roles
bound it, the rule is read live on every request, and a client nobody owns sees nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cases_world import Org, auth, cloud_event

from upstander.kit.scopes import scopes_for_roles

CASE_READS = ("", "/messages", "/allegations")


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def api_client(org: Org, roles: list[str], owner: uuid.UUID | str | None) -> dict[str, str]:
    """A client_credentials token as the gateway signs it for a client `owner` registered
    with `roles` (which it grants as the scopes they map to)."""
    claims: dict[str, Any] = {} if owner is None else {"owner": str(owner)}
    scope = " ".join(sorted(scopes_for_roles(roles)))
    return auth(
        org.mint(org=org.id, roles=roles, sub="cl_hr_sync", typ="client", scope=scope, **claims)
    )


async def reads(org: Org, case_id: uuid.UUID, headers: dict[str, str]) -> list[int]:
    """The statuses of reading the case, its messages and its allegations."""
    url = f"/cases/v1/cases/{case_id}"
    return [(await org.client.get(url + path, headers=headers)).status_code for path in CASE_READS]


async def listed(org: Org, headers: dict[str, str]) -> set[str]:
    response = await org.client.get("/cases/v1/cases", headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def person_event(org: Org, name: str, type_: str, **data: Any) -> None:
    payload = {"person_id": str(org.people[name]), "org_id": str(org.id), **data}
    await org.send(cloud_event(f"upstander.person.{type_}", payload, org_id=org.id))


async def test_a_client_registered_by_an_admin_above_the_respondent_cannot_read_the_case(
    org: Org,
) -> None:
    # candidate (admin) sits above manager, who sits above the respondent `involved`.
    _, case_id = await org.report(involved=["involved"])
    client = api_client(org, ["reviewer"], owner=org.candidate)

    assert await reads(org, case_id, client) == [404, 404, 404]
    assert str(case_id) not in await listed(org, client)


async def test_a_client_registered_by_an_excluded_person_cannot_read_the_case(org: Org) -> None:
    _, case_id = await org.report(involved=[], excluded=["handler"])
    client = api_client(org, ["reviewer"], owner=org.handler)

    assert await reads(org, case_id, client) == [404, 404, 404]


async def test_a_client_registered_by_an_unrestricted_handler_reads_the_case(org: Org) -> None:
    _, case_id = await org.report(involved=["involved"])
    client = api_client(org, ["reviewer"], owner=org.handler)

    assert await reads(org, case_id, client) == [200, 200, 200]
    assert str(case_id) in await listed(org, client)


async def test_a_client_never_sees_past_its_owner_s_own_roles(org: Org) -> None:
    # Leadership is involved: the case goes to independent reviewers only.
    _, case_id = await org.report(involved=["candidate"], excluded=[])
    by_case_manager = api_client(org, ["reviewer"], owner=org.handler)
    by_reviewer = api_client(org, ["reviewer"], owner=org.reviewer)

    assert await reads(org, case_id, by_case_manager) == [404, 404, 404]
    assert await reads(org, case_id, by_reviewer) == [200, 200, 200]


async def test_a_client_never_sees_past_its_own_roles(org: Org) -> None:
    _, case_id = await org.report(involved=["candidate"], excluded=[])
    case_manager_client = api_client(org, ["case_manager"], owner=org.reviewer)

    assert await reads(org, case_id, case_manager_client) == [404, 404, 404]


async def test_a_client_nobody_owns_sees_no_case(org: Org) -> None:
    _, case_id = await org.report(involved=["involved"])
    ownerless = api_client(org, ["reviewer"], owner=None)
    malformed = api_client(org, ["reviewer"], owner="not-a-uuid")

    assert await reads(org, case_id, ownerless) == [404, 404, 404]
    assert await reads(org, case_id, malformed) == [404, 404, 404]
    assert await listed(org, ownerless) == set()


async def test_a_client_owned_by_another_org_s_person_sees_no_case(
    org: Org, client: httpx.AsyncClient, mint: Any, service_token: str
) -> None:
    other = await Org(client, mint, service_token).build()
    _, case_id = await org.report(involved=["involved"])
    stranger = api_client(org, ["reviewer"], owner=other.reviewer)

    assert await reads(org, case_id, stranger) == [404, 404, 404]


async def test_a_client_loses_the_case_the_moment_its_owner_is_named_in_an_allegation(
    org: Org,
) -> None:
    _, case_id = await org.report(involved=[], excluded=[])
    client = api_client(org, ["reviewer"], owner=org.deputy)
    assert await reads(org, case_id, client) == [200, 200, 200]

    named = await org.client.post(
        f"/cases/v1/cases/{case_id}/allegations",
        json={
            "category": "retaliation",
            "description": "Moved my shifts after I complained",
            "subject_person_ids": [str(org.deputy)],
        },
        headers=org.headers("handler"),
    )

    assert named.status_code == 201, named.text
    assert await reads(org, case_id, client) == [404, 404, 404]


async def test_a_client_loses_the_case_when_its_owner_recuses(org: Org) -> None:
    _, case_id = await org.report(involved=[], excluded=[])
    client = api_client(org, ["reviewer"], owner=org.handler)
    assert await reads(org, case_id, client) == [200, 200, 200]

    recused = await org.client.post(
        f"/cases/v1/cases/{case_id}/recusal", headers=org.headers("handler")
    )

    assert recused.status_code == 201, recused.text
    assert await reads(org, case_id, client) == [404, 404, 404]


async def test_a_client_loses_every_case_when_its_owner_is_deactivated_or_demoted(
    org: Org,
) -> None:
    _, case_id = await org.report(involved=[], excluded=[])
    by_handler = api_client(org, ["reviewer"], owner=org.handler)
    by_deputy = api_client(org, ["reviewer"], owner=org.deputy)

    await person_event(org, "handler", "deactivated", active=False)
    await person_event(org, "deputy", "updated", roles=["staff"])

    assert await reads(org, case_id, by_handler) == [404, 404, 404]
    assert await reads(org, case_id, by_deputy) == [404, 404, 404]
    assert await listed(org, by_handler) == set()


async def test_a_client_of_a_restricted_owner_cannot_write_to_the_case(org: Org) -> None:
    _, case_id = await org.report(involved=["involved"])
    client = api_client(org, ["reviewer"], owner=org.candidate)

    sent = await org.client.post(
        f"/cases/v1/cases/{case_id}/messages", json={"body": "Hello"}, headers=client
    )

    assert sent.status_code == 404
