"""`scim2-tester` (the RFC 7643/7644 conformance checker) against /scim/v2 on a live gateway,
authenticated as an IdP is (an API client granted `scim`), and `scim2-client` round-tripping a
User. Every check passes except the deviations listed in `KNOWN_DEVIATIONS`, each a decision
documented in docs/scim.md:

- Groups are the fixed Upstander roles: a group named after no role cannot be created, and a
  role group cannot be deleted, so the checker's Group life cycle (random names) fails;
- a person always has `active`, a display name, a language and a leadership flag, so removing
  them (or a whole extension) resets them to their defaults rather than leaving them absent;
- PATCH `add` on the multi-valued Upstander `roles` appends, as RFC 7644 3.5.2.1 says (the
  checker expects the value to be replaced).

Any other failure, and any of these coming back for another reason, fails the test."""

from __future__ import annotations

import asyncio
import uuid

import helpers
import httpx
import pytest
from scim2_tester import Status, check_server
from scim_live_support import HttpxSCIMClient, live_gateway

DEMO_PASSWORD = "upstander-demo"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
REMOVABLE_DEFAULTS = (
    "displayName",
    "preferredLanguage",
    "active",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:upstander:params:scim:schemas:extension:2.0:User",
    "urn:upstander:params:scim:schemas:extension:2.0:User:isLeadership",
)


def _known_deviation(resource_type: str | None, title: str, reason: str) -> bool:
    if resource_type == "Group":
        return "Groups are the Upstander roles" in reason or title == "search_with_attributes"
    if title == "check_remove_attribute":
        return any(f"did not remove attribute '{name}'" in reason for name in REMOVABLE_DEFAULTS)
    if title == "check_add_attribute":
        return "'urn:upstander:params:scim:schemas:extension:2.0:User:roles'" in reason
    return False


@pytest.fixture(scope="module")
def scim_base(test_backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("scim-live")
    url = asyncio.run(helpers.fresh_database("gateway", directory))
    with live_gateway(url, directory) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            admin = http.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": "admin@demo.example",
                    "password": DEMO_PASSWORD,
                },
            ).json()["access_token"]
            client = http.post(
                "/identity/v1/clients",
                json={"name": "scim2-tester", "scopes": ["scim"]},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()
            token = http.post(
                "/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(client["client_id"], client["client_secret"]),
            ).json()["access_token"]
        yield f"{base}/scim/v2|{token}"
    asyncio.run(helpers.drop_database(url))


def _client(scim_base: str) -> tuple[httpx.Client, HttpxSCIMClient]:
    base, token = scim_base.split("|")
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return http, HttpxSCIMClient(http)


def test_scim2_tester_finds_nothing_but_the_documented_deviations(scim_base: str) -> None:
    http, client = _client(scim_base)
    with http:
        results = check_server(client)
    failed = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    unexpected = [
        (r.resource_type, r.title, (r.reason or "")[:300])
        for r in failed
        if not _known_deviation(r.resource_type, r.title or "", r.reason or "")
    ]
    assert unexpected == []
    passed = [r for r in results if r.status == Status.SUCCESS]
    # Discovery, the random URL, and the User life cycle (create, query, replace, delete).
    assert len(passed) >= 70, len(passed)
    user_titles = {r.title for r in passed if r.resource_type == "User"}
    assert {"object_creation", "object_query", "object_replacement", "object_deletion"} <= (
        user_titles
    )


def test_scim2_client_round_trips_a_user_with_a_manager(scim_base: str) -> None:
    http, client = _client(scim_base)
    with http:
        client.discover()
        user_model = client.get_resource_model("User")
        assert user_model is not None
        manager = client.create(
            user_model.model_validate({"userName": f"lead-{uuid.uuid4().hex[:8]}@demo.example"})
        )
        user = user_model.model_validate(
            {
                "userName": f"rey-{uuid.uuid4().hex[:8]}@demo.example",
                "externalId": f"E-{uuid.uuid4().hex[:6]}",
                "displayName": "Rey Report",
                "name": {"givenName": "Rey", "familyName": "Report"},
                "emails": [{"value": "rey.work@demo.example", "type": "work", "primary": True}],
                ENTERPRISE: {"department": "Field", "manager": {"value": manager.id}},
            }
        )
        created = client.create(user)
        fetched = client.query(user_model, created.id).model_dump(mode="json", by_alias=True)
        assert fetched["userName"] == user.user_name
        assert fetched["externalId"] == user.external_id
        assert fetched["emails"] == [
            {"value": "rey.work@demo.example", "type": "work", "primary": True}
        ]
        assert fetched[ENTERPRISE]["manager"]["value"] == manager.id
        assert fetched[ENTERPRISE]["department"] == "Field"
        found = client.query(
            user_model, query_parameters={"filter": f'userName eq "{user.user_name}"'}
        )
        assert [resource.id for resource in found.resources] == [created.id]
        client.delete(user_model, created.id)
        listed = client.query(user_model, query_parameters={"filter": f'id eq "{created.id}"'})
        assert listed.total_results == 0
