"""SCIM Groups: each Upstander role is a group whose members hold it (Entra adds and removes
members with `members` values, Okta removes with a `members[value eq ...]` path; either changes
the person's roles; role groups cannot be renamed or deleted), and any other group an IdP
pushes is a team: created, renamed, filled, emptied and deleted, unique by displayName in the
organisation, granting nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from scim_support import (
    PATCH_OP,
    SCIM,
    UPSTANDER,
    assert_scim_error,
    create,
    okta_user,
    scim_headers,
    unique_email,
)

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture(scope="module")
async def scim(gateway: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    return await scim_headers(gateway, admin_headers)


async def _patch_group(
    gateway: httpx.AsyncClient, scim: dict[str, str], group: str, operations: list[object]
) -> httpx.Response:
    return await gateway.patch(
        f"{SCIM}/Groups/{group}",
        json={"schemas": [PATCH_OP], "Operations": operations},
        headers=scim,
    )


async def _roles(gateway: httpx.AsyncClient, scim: dict[str, str], user_id: str) -> list[str]:
    response = await gateway.get(f"{SCIM}/Users/{user_id}", headers=scim)
    roles: list[str] = response.json()[UPSTANDER]["roles"]
    return roles


async def test_every_role_is_a_group_found_by_displayname(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    listed = await gateway.get(
        f"{SCIM}/Groups", params={"excludedAttributes": "members"}, headers=scim
    )
    names = {group["displayName"] for group in listed.json()["Resources"]}
    assert {"admin", "case_manager", "investigator", "reviewer", "staff"} <= names
    assert all("members" not in group for group in listed.json()["Resources"])
    found = await gateway.get(
        f"{SCIM}/Groups", params={"filter": 'displayName eq "investigator"'}, headers=scim
    )
    assert [group["id"] for group in found.json()["Resources"]] == ["investigator"]


async def test_entra_adds_and_removes_members_and_okta_removes_by_value_filter(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    ana = await create(gateway, scim, okta_user(unique_email("ana")))
    ben = await create(gateway, scim, okta_user(unique_email("ben")))
    added = await _patch_group(
        gateway,
        scim,
        "investigator",
        [{"op": "Add", "path": "members", "value": [{"value": ana["id"]}, {"value": ben["id"]}]}],
    )
    assert added.status_code == 200, added.text
    members = {member["value"] for member in added.json()["members"]}
    assert {ana["id"], ben["id"]} <= members
    assert "investigator" in await _roles(gateway, scim, ana["id"])

    removed = await _patch_group(
        gateway,
        scim,
        "investigator",
        [{"op": "Remove", "path": "members", "value": [{"value": ana["id"]}]}],
    )
    assert ana["id"] not in {member["value"] for member in removed.json()["members"]}
    assert "investigator" not in await _roles(gateway, scim, ana["id"])

    okta = await _patch_group(
        gateway,
        scim,
        "investigator",
        [{"op": "remove", "path": f'members[value eq "{ben["id"]}"]'}],
    )
    assert okta.status_code == 200, okta.text
    assert "investigator" not in await _roles(gateway, scim, ben["id"])


async def test_post_claims_a_role_group_and_put_sets_its_members(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    person = await create(gateway, scim, okta_user(unique_email("trainer")))
    claimed = await gateway.post(
        f"{SCIM}/Groups",
        json={"schemas": [GROUP], "displayName": "Trainer", "members": [{"value": person["id"]}]},
        headers=scim,
    )
    assert claimed.status_code == 201, claimed.text
    assert claimed.json()["id"] == "trainer"
    assert "trainer" in await _roles(gateway, scim, person["id"])
    # PUT replaces the membership: everyone but this person stays (the gateway, and its demo
    # trainer, are shared by the module's tests).
    current = await gateway.get(f"{SCIM}/Groups/trainer", headers=scim)
    others = [m for m in current.json()["members"] if m["value"] != person["id"]]
    replaced = await gateway.put(
        f"{SCIM}/Groups/trainer",
        json={"schemas": [GROUP], "displayName": "trainer", "members": others},
        headers=scim,
    )
    assert replaced.status_code == 200, replaced.text
    assert {m["value"] for m in replaced.json()["members"]} == {m["value"] for m in others}
    assert "trainer" not in await _roles(gateway, scim, person["id"])


async def test_role_groups_cannot_be_renamed_deleted_or_given_strangers(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    renamed = await _patch_group(
        gateway,
        scim,
        "staff",
        [{"op": "replace", "value": {"id": "staff", "displayName": "admin"}}],
    )
    assert_scim_error(renamed, 400, "mutability")
    assert_scim_error(await gateway.delete(f"{SCIM}/Groups/staff", headers=scim), 400, "mutability")
    assert_scim_error(await gateway.get(f"{SCIM}/Groups/marketing", headers=scim), 404)
    stranger = await _patch_group(
        gateway,
        scim,
        "staff",
        [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": "7b0c3f0e-6a53-4b55-9a55-3f5f0c8f2a10"}],
            }
        ],
    )
    assert_scim_error(stranger, 400, "invalidValue")


async def _groups_of(gateway: httpx.AsyncClient, scim: dict[str, str], user_id: str) -> set[str]:
    response = await gateway.get(f"{SCIM}/Users/{user_id}", headers=scim)
    assert response.status_code == 200, response.text
    return {group["display"] for group in response.json()["groups"]}


async def test_a_team_is_created_renamed_filled_emptied_and_deleted_granting_nothing(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    ana = await create(gateway, scim, okta_user(unique_email("ana")))
    ben = await create(gateway, scim, okta_user(unique_email("ben")))
    name = f"Field team {uuid.uuid4().hex[:6]}"
    created = await gateway.post(
        f"{SCIM}/Groups",
        json={
            "schemas": [GROUP],
            "displayName": name,
            "externalId": "okta-grp-1",
            "members": [{"value": ana["id"]}],
        },
        headers=scim,
    )
    assert created.status_code == 201, created.text
    team = created.json()
    assert created.headers["location"].endswith(f"/scim/v2/Groups/{team['id']}")
    assert created.headers["etag"] == team["meta"]["version"] == 'W/"1"'
    assert team["displayName"] == name and team["externalId"] == "okta-grp-1"
    assert [member["value"] for member in team["members"]] == [ana["id"]]
    assert name in await _groups_of(gateway, scim, ana["id"])
    assert await _roles(gateway, scim, ana["id"]) == ["staff"]  # a team grants nothing

    found = await gateway.get(
        f"{SCIM}/Groups", params={"filter": f'displayName eq "{name}"'}, headers=scim
    )
    assert [group["id"] for group in found.json()["Resources"]] == [team["id"]]

    # The same name, in any case, or a role's name, is taken.
    for taken in (name.upper(), "Case Manager"):
        if taken == "Case Manager":
            clash = await _patch_group(
                gateway,
                scim,
                team["id"],
                [{"op": "replace", "path": "displayName", "value": taken}],
            )
        else:
            clash = await gateway.post(
                f"{SCIM}/Groups", json={"schemas": [GROUP], "displayName": taken}, headers=scim
            )
        assert_scim_error(clash, 409, "uniqueness")

    # Entra: rename and add a member in one PATCH; Okta: remove by value filter.
    entra = await _patch_group(
        gateway,
        scim,
        team["id"],
        [
            {"op": "Replace", "path": "displayName", "value": f"{name} (renamed)"},
            {"op": "Add", "path": "members", "value": [{"value": ben["id"]}]},
        ],
    )
    assert entra.status_code == 200, entra.text
    assert entra.json()["displayName"] == f"{name} (renamed)"
    assert {member["value"] for member in entra.json()["members"]} == {ana["id"], ben["id"]}
    okta = await _patch_group(
        gateway, scim, team["id"], [{"op": "remove", "path": f'members[value eq "{ana["id"]}"]'}]
    )
    assert [member["value"] for member in okta.json()["members"]] == [ben["id"]]
    assert f"{name} (renamed)" not in await _groups_of(gateway, scim, ana["id"])

    stale = await gateway.put(
        f"{SCIM}/Groups/{team['id']}",
        json={"schemas": [GROUP], "displayName": name},
        headers={**scim, "If-Match": team["meta"]["version"]},
    )
    assert_scim_error(stale, 412)
    replaced = await gateway.put(
        f"{SCIM}/Groups/{team['id']}", json={"schemas": [GROUP], "displayName": name}, headers=scim
    )
    assert replaced.status_code == 200, replaced.text
    assert "members" not in replaced.json() and "externalId" not in replaced.json()

    deleted = await gateway.delete(f"{SCIM}/Groups/{team['id']}", headers=scim)
    assert deleted.status_code == 204
    assert_scim_error(await gateway.get(f"{SCIM}/Groups/{team['id']}", headers=scim), 404)
    again = await gateway.post(
        f"{SCIM}/Groups", json={"schemas": [GROUP], "displayName": name}, headers=scim
    )
    assert again.status_code == 201, again.text  # the name is free again


async def test_team_members_are_live_people_of_the_same_organisation(
    gateway: httpx.AsyncClient, scim: dict[str, str], org_b: Any
) -> None:
    stranger = await gateway.post(
        f"{SCIM}/Groups",
        json={
            "schemas": [GROUP],
            "displayName": f"Crew {uuid.uuid4().hex[:6]}",
            "members": [{"value": str(org_b.person_id)}],
        },
        headers=scim,
    )
    assert_scim_error(stranger, 400, "invalidValue")
    leaver = await create(gateway, scim, okta_user(unique_email("leaver")))
    team = await gateway.post(
        f"{SCIM}/Groups",
        json={
            "schemas": [GROUP],
            "displayName": f"Crew {uuid.uuid4().hex[:6]}",
            "members": [{"value": leaver["id"]}],
        },
        headers=scim,
    )
    assert team.status_code == 201, team.text
    assert (await gateway.delete(f"{SCIM}/Users/{leaver['id']}", headers=scim)).status_code == 204
    after = await gateway.get(f"{SCIM}/Groups/{team.json()['id']}", headers=scim)
    assert "members" not in after.json()
    assert after.json()["meta"]["version"] != team.json()["meta"]["version"]
