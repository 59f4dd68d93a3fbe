"""`scim2-tester` (the RFC 7643/7644 conformance checker) against /scim/v2 on a live gateway,
authenticated as an IdP is (an API client granted `scim`), with no failure tolerated, and
`scim2-client` round-tripping a User with a manager and a Group (a team): create, read, patch
its members, replace, delete."""

from __future__ import annotations

import asyncio
import uuid

import helpers
import httpx
import pytest
from scim2_models import PatchOp, PatchOperation
from scim2_tester import Status, check_server
from scim_live_support import HttpxSCIMClient, live_gateway

DEMO_PASSWORD = "upstander-demo"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


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


def test_scim2_tester_finds_no_failure(scim_base: str) -> None:
    http, client = _client(scim_base)
    with http:
        results = check_server(client)
    failed = [
        (r.resource_type, r.title, (r.reason or "")[:300])
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert failed == []
    passed = [r for r in results if r.status == Status.SUCCESS]
    # Discovery, the random URL, and the User and Group life cycles (create, query, replace,
    # PATCH add/remove/replace of every attribute, delete).
    assert len(passed) >= 100, len(passed)
    life_cycle = {"object_creation", "object_query", "object_replacement", "object_deletion"}
    for resource_type in ("User", "Group"):
        titles = {r.title for r in passed if r.resource_type == resource_type}
        assert life_cycle | {"check_add_attribute", "check_remove_attribute"} <= titles


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


def test_scim2_client_round_trips_a_group(scim_base: str) -> None:
    http, client = _client(scim_base)
    with http:
        client.discover()
        user_model = client.get_resource_model("User")
        group_model = client.get_resource_model("Group")
        assert user_model is not None and group_model is not None
        ana, ben = (
            client.create(
                user_model.model_validate(
                    {"userName": f"{who}-{uuid.uuid4().hex[:8]}@demo.example"}
                )
            )
            for who in ("ana", "ben")
        )
        name = f"Field team {uuid.uuid4().hex[:6]}"
        created = client.create(
            group_model.model_validate(
                {"displayName": name, "externalId": "G-1", "members": [{"value": ana.id}]}
            )
        )
        fetched = client.query(group_model, created.id).model_dump(mode="json", by_alias=True)
        assert fetched["displayName"] == name and fetched["externalId"] == "G-1"
        assert [member["value"] for member in fetched["members"]] == [ana.id]
        found = client.query(group_model, query_parameters={"filter": f'displayName eq "{name}"'})
        assert [resource.id for resource in found.resources] == [created.id]

        patch = PatchOp[group_model].model_validate(
            {
                "Operations": [
                    {
                        "op": PatchOperation.Op.add,
                        "path": "members",
                        "value": [{"value": ben.id}],
                    },
                    {"op": PatchOperation.Op.remove, "path": f'members[value eq "{ana.id}"]'},
                ]
            }
        )
        patched = client.modify(group_model, created.id, patch)
        assert patched is not None
        assert [member.value for member in patched.members] == [ben.id]
        user = client.query(user_model, ben.id).model_dump(mode="json", by_alias=True)
        assert name in {group["display"] for group in user["groups"]}

        replacement = client.query(group_model, created.id)
        replacement.display_name = f"{name} (renamed)"
        replacement.members = None
        replaced = client.replace(replacement)
        assert replaced.display_name == f"{name} (renamed)" and not replaced.members

        client.delete(group_model, created.id)
        listed = client.query(group_model, query_parameters={"filter": f'id eq "{created.id}"'})
        assert listed.total_results == 0
