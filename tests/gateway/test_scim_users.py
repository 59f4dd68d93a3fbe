"""SCIM 2.0 at /scim/v2 (RFC 7643/7644) for the requests Okta and Microsoft Entra ID send: an
API client granted `scim` provisions people (core + enterprise + Upstander extension),
finds them with the filters both vendors use, pages, projects attributes, replaces and
patches them in either vendor's dialect, with ETags and SCIM error bodies throughout."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from scim_support import (
    CORE,
    ENTERPRISE,
    LIST,
    PATCH_OP,
    SCIM,
    SCIM_JSON,
    UPSTANDER,
    assert_scim_error,
    create,
    entra_user,
    okta_user,
    patch,
    scim_headers,
    unique_email,
)


@pytest.fixture(scope="module")
async def scim(gateway: httpx.AsyncClient, admin_headers: dict[str, str]) -> dict[str, str]:
    return await scim_headers(gateway, admin_headers)


async def _find(gateway: httpx.AsyncClient, scim: dict[str, str], query: str) -> dict[str, Any]:
    response = await gateway.get(f"{SCIM}/Users", params={"filter": query}, headers=scim)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [LIST]
    return body


# ----------------------------------------------------------------------------- discovery


async def test_discovery_documents_describe_users_groups_and_what_is_supported(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    config = await gateway.get(f"{SCIM}/ServiceProviderConfig", headers=scim)
    assert config.status_code == 200
    assert config.headers["content-type"].startswith(SCIM_JSON)
    body = config.json()
    assert body["patch"]["supported"] and body["filter"]["supported"]
    assert body["etag"]["supported"] and not body["bulk"]["supported"]
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"

    types = (await gateway.get(f"{SCIM}/ResourceTypes", headers=scim)).json()
    assert {found["id"] for found in types["Resources"]} == {"User", "Group"}
    user_type = (await gateway.get(f"{SCIM}/ResourceTypes/User", headers=scim)).json()
    assert {ext["schema"] for ext in user_type["schemaExtensions"]} == {ENTERPRISE, UPSTANDER}

    schemas = (await gateway.get(f"{SCIM}/Schemas", headers=scim)).json()
    ids = {found["id"] for found in schemas["Resources"]}
    assert {CORE, ENTERPRISE, UPSTANDER} <= ids
    enterprise = (await gateway.get(f"{SCIM}/Schemas/{ENTERPRISE}", headers=scim)).json()
    assert "manager" in {attribute["name"] for attribute in enterprise["attributes"]}
    assert_scim_error(await gateway.get(f"{SCIM}/Schemas/urn:nope", headers=scim), 404)


async def test_scim_needs_a_token_with_the_scim_scope_and_answers_in_scim_errors(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    anonymous = await gateway.get(f"{SCIM}/Users")
    assert_scim_error(anonymous, 401)
    assert "Bearer" in anonymous.headers["www-authenticate"]
    directory_client = await scim_headers(gateway, admin_headers, ("people:write",))
    assert_scim_error(await gateway.get(f"{SCIM}/Users", headers=directory_client), 403)


# ----------------------------------------------------------------------------- create, filters


async def test_okta_creates_a_user_and_finds_it_by_username_externalid_email_and_name(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    email = unique_email("okta")
    body = okta_user(email)
    response = await gateway.post(
        f"{SCIM}/Users", json=body, headers={**scim, "Content-Type": SCIM_JSON}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    user = response.json()
    assert response.headers["location"].endswith(f"/scim/v2/Users/{user['id']}")
    assert response.headers["etag"] == user["meta"]["version"] == 'W/"1"'
    assert user["userName"] == email and user["externalId"] == body["externalId"]
    assert user["name"]["givenName"] == "Test" and user["displayName"] == "Test User"
    assert user["active"] is True and "password" not in user
    assert user[UPSTANDER]["roles"] == ["staff"] and user[UPSTANDER]["isLeadership"] is False

    for query in (
        f'userName eq "{email}"',
        f'userName eq "{email.upper()}"',  # userName is case-insensitive
        f'externalId eq "{body["externalId"]}"',
        f'emails[type eq "work"].value eq "{email}"',
        f'userName eq "{email}" and active eq true',
        f'displayName eq "Test User" and externalId eq "{body["externalId"]}"',
    ):
        found = await _find(gateway, scim, query)
        assert found["totalResults"] == 1, query
        assert found["Resources"][0]["id"] == user["id"], query
    missing = await _find(gateway, scim, 'userName eq "nobody@demo.example"')
    assert missing == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


async def test_entra_creates_a_user_with_the_enterprise_extension_and_an_empty_roles_list(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    user_name = unique_email("Test_User")
    user = await create(gateway, scim, entra_user(user_name))
    assert user["userName"] == user_name.lower()
    assert user["displayName"] == "givenName familyName"
    assert user[UPSTANDER]["roles"] == ["staff"]
    found = await _find(gateway, scim, f'userName eq "{user_name}"')
    assert [item["id"] for item in found["Resources"]] == [user["id"]]


async def test_a_second_user_with_the_same_username_or_externalid_is_a_409_uniqueness(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    email = unique_email("dup")
    first = await create(gateway, scim, okta_user(email))
    again = await gateway.post(f"{SCIM}/Users", json=okta_user(email), headers=scim)
    assert_scim_error(again, 409, "uniqueness")
    same_external = okta_user(unique_email("dup"), external_id=first["externalId"])
    again = await gateway.post(f"{SCIM}/Users", json=same_external, headers=scim)
    assert_scim_error(again, 409, "uniqueness")


async def test_bad_input_is_a_scim_400_never_a_5xx(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    for bad in ({"userName": ""}, {"userName": "x" * 321}, {"userName": "a", "emails": "a@b.c"}):
        response = await gateway.post(f"{SCIM}/Users", json=bad, headers=scim)
        assert_scim_error(response, 400, "invalidValue")
    not_json = await gateway.post(
        f"{SCIM}/Users", content=b"{nope", headers={**scim, "Content-Type": SCIM_JSON}
    )
    assert_scim_error(not_json, 400, "invalidSyntax")
    bad_role = {**okta_user(unique_email()), UPSTANDER: {"roles": ["overlord"]}}
    assert_scim_error(
        await gateway.post(f"{SCIM}/Users", json=bad_role, headers=scim), 400, "invalidValue"
    )
    for query in ("userName eq", 'userName xx "a"', '(userName eq "a"', 'emails[type eq "work"'):
        response = await gateway.get(f"{SCIM}/Users", params={"filter": query}, headers=scim)
        assert_scim_error(response, 400, "invalidFilter")
    assert_scim_error(await gateway.get(f"{SCIM}/Users/not-a-uuid", headers=scim), 404)
    bad_count = await gateway.get(f"{SCIM}/Users", params={"count": "many"}, headers=scim)
    assert_scim_error(bad_count, 400)


async def test_users_page_with_startindex_and_count(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    department = f"Paging {unique_email()}"
    made = []
    for _ in range(3):
        body = {**okta_user(unique_email("page")), ENTERPRISE: {"department": department}}
        made.append((await create(gateway, scim, body))["id"])
    query = f'{ENTERPRISE}:department eq "{department}"'
    seen = []
    for start in (1, 3):
        response = await gateway.get(
            f"{SCIM}/Users", params={"filter": query, "startIndex": start, "count": 2}, headers=scim
        )
        body = response.json()
        assert body["totalResults"] == 3 and body["startIndex"] == start
        seen += [item["id"] for item in body["Resources"]]
    assert seen == made
    counted = await gateway.get(f"{SCIM}/Users", params={"filter": query, "count": 0}, headers=scim)
    assert counted.json()["totalResults"] == 3 and counted.json()["Resources"] == []


async def test_attributes_and_excluded_attributes_shape_the_answer(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    user = await create(gateway, scim, okta_user(unique_email("attrs")))
    only = await gateway.get(
        f"{SCIM}/Users/{user['id']}",
        params={"attributes": f"userName,name.givenName,{ENTERPRISE}:department"},
        headers=scim,
    )
    body = only.json()
    assert set(body) <= {"schemas", "id", "userName", "name", ENTERPRISE}
    assert body["userName"] == user["userName"] and body["name"] == {"givenName": "Test"}
    listed = await gateway.get(
        f"{SCIM}/Users",
        params={"filter": f'id eq "{user["id"]}"', "excludedAttributes": "emails,groups,meta"},
        headers=scim,
    )
    resource = listed.json()["Resources"][0]
    assert "emails" not in resource and "groups" not in resource and "meta" not in resource
    assert resource["id"] == user["id"] and resource["userName"] == user["userName"]


# ----------------------------------------------------------------------------- PUT, PATCH, ETags


async def test_put_replaces_the_user_and_if_match_guards_against_lost_updates(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    user = await create(gateway, scim, okta_user(unique_email("put")))
    replacement = {
        **okta_user(user["userName"], external_id=user["externalId"]),
        "title": "Field Organizer",
        "name": {"givenName": "Tess", "familyName": "User"},
        "displayName": "Tess User",
    }
    stale = await gateway.put(
        f"{SCIM}/Users/{user['id']}", json=replacement, headers={**scim, "If-Match": 'W/"99"'}
    )
    assert_scim_error(stale, 412)
    replaced = await gateway.put(
        f"{SCIM}/Users/{user['id']}",
        json=replacement,
        headers={**scim, "If-Match": user["meta"]["version"]},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["title"] == "Field Organizer" and body["displayName"] == "Tess User"
    assert body["meta"]["version"] == 'W/"2"' == replaced.headers["etag"]
    same = await gateway.put(f"{SCIM}/Users/{user['id']}", json=replacement, headers=scim)
    assert same.json()["meta"]["version"] == 'W/"2"'  # nothing changed: same version


async def test_entra_patch_with_capitalised_ops_filters_and_a_bare_manager_id(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    manager = await create(gateway, scim, entra_user(unique_email("boss")))
    user = await create(gateway, scim, entra_user(unique_email("report")))
    new_email = unique_email("updated")
    response = await patch(
        gateway,
        scim,
        user["id"],
        [
            {"op": "Replace", "path": "userName", "value": new_email},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_email},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
            {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Field"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "E-1042"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userName"] == new_email
    assert body["name"]["familyName"] == "updatedFamilyName"
    assert body[ENTERPRISE]["manager"]["value"] == manager["id"]
    assert body[ENTERPRISE]["department"] == "Field"
    assert body[ENTERPRISE]["employeeNumber"] == "E-1042"

    removed = await patch(
        gateway, scim, user["id"], [{"op": "Remove", "path": f"{ENTERPRISE}:manager"}]
    )
    assert "manager" not in removed.json()[ENTERPRISE]
    disabled = await patch(
        gateway, scim, user["id"], [{"op": "Replace", "path": "active", "value": "False"}]
    )
    assert disabled.status_code == 200 and disabled.json()["active"] is False


async def test_pathless_patch_value_objects_with_dotted_and_urn_keys(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    manager = await create(gateway, scim, okta_user(unique_email("lead")))
    user = await create(gateway, scim, okta_user(unique_email("pathless")))
    response = await patch(
        gateway,
        scim,
        user["id"],
        [
            {
                "op": "replace",
                "value": {
                    "name.givenName": "Ana",
                    "title": "Organizer",
                    f"{ENTERPRISE}:department": "Canvassing",
                    ENTERPRISE: {"manager": {"value": manager["id"]}},
                    UPSTANDER: {"roles": ["staff", "trainer"], "isLeadership": True},
                },
            }
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"]["givenName"] == "Ana" and body["title"] == "Organizer"
    assert body[ENTERPRISE]["department"] == "Canvassing"
    assert body[ENTERPRISE]["manager"]["value"] == manager["id"]
    assert body[UPSTANDER] == {"roles": ["staff", "trainer"], "isLeadership": True}
    assert {group["value"] for group in body["groups"]} == {"staff", "trainer"}


async def test_okta_active_toggle_off_and_on(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    user = await create(gateway, scim, okta_user(unique_email("toggle")))
    off = await patch(gateway, scim, user["id"], [{"op": "replace", "value": {"active": False}}])
    assert off.json()["active"] is False
    on = await patch(gateway, scim, user["id"], [{"op": "replace", "value": {"active": True}}])
    assert on.json()["active"] is True
    assert on.json()["meta"]["version"] == 'W/"3"'


async def test_patch_refusals_are_scim_errors(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    user = await create(gateway, scim, okta_user(unique_email("refuse")))
    other = await create(gateway, scim, okta_user(unique_email("other")))
    cases = [
        ([{"op": "explode", "path": "title", "value": "x"}], "invalidSyntax"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "replace", "path": "userName", "value": other["userName"]}], "uniqueness"),
        ([{"op": "replace", "path": f"{ENTERPRISE}:manager", "value": user["id"]}], None),
        ([{"op": "replace", "path": "active", "value": "maybe"}], "invalidValue"),
        ([{"op": "replace", "path": "id", "value": other["id"]}], "mutability"),
    ]
    for operations, scim_type in cases:
        response = await patch(gateway, scim, user["id"], operations)
        status = 409 if scim_type == "uniqueness" else 400
        assert_scim_error(response, status, scim_type)
    wrong_schema = await gateway.patch(
        f"{SCIM}/Users/{user['id']}",
        json={"schemas": [CORE], "Operations": []},
        headers=scim,
    )
    assert_scim_error(wrong_schema, 400, "invalidSyntax")
    stale = await patch(
        gateway,
        scim,
        user["id"],
        [{"op": "replace", "path": "title", "value": "x"}],
        **{"If-Match": 'W/"41"'},
    )
    assert_scim_error(stale, 412)
    # The manager loop: the manager of `other` cannot report to `other`.
    await patch(
        gateway,
        scim,
        user["id"],
        [{"op": "add", "path": f"{ENTERPRISE}:manager", "value": other["id"]}],
    )
    loop = await patch(
        gateway,
        scim,
        other["id"],
        [{"op": "add", "path": f"{ENTERPRISE}:manager", "value": user["id"]}],
    )
    assert_scim_error(loop, 400, "invalidValue")


async def test_another_organisations_people_are_invisible(
    gateway: httpx.AsyncClient, scim: dict[str, str], org_b: Any
) -> None:
    response = await gateway.get(f"{SCIM}/Users/{org_b.person_id}", headers=scim)
    assert_scim_error(response, 404)
    listed = await _find(gateway, scim, 'userName eq "worker@beta.example"')
    assert listed["totalResults"] == 0
    manager_elsewhere = await gateway.post(
        f"{SCIM}/Users",
        json={
            **okta_user(unique_email()),
            ENTERPRISE: {"manager": {"value": str(org_b.person_id)}},
        },
        headers=scim,
    )
    assert_scim_error(manager_elsewhere, 400, "invalidValue")


async def test_delete_deprovisions_the_user_and_it_is_gone_from_scim(
    gateway: httpx.AsyncClient, scim: dict[str, str], admin_headers: dict[str, str]
) -> None:
    user = await create(gateway, scim, okta_user(unique_email("gone")))
    deleted = await gateway.delete(f"{SCIM}/Users/{user['id']}", headers=scim)
    assert deleted.status_code == 204
    assert_scim_error(await gateway.get(f"{SCIM}/Users/{user['id']}", headers=scim), 404)
    assert_scim_error(await gateway.delete(f"{SCIM}/Users/{user['id']}", headers=scim), 404)
    kept = await gateway.get(f"/identity/v1/people/{user['id']}", headers=admin_headers)
    assert kept.status_code == 200 and kept.json()["active"] is False
    # Provisioned again, they come back as themself (records and history stay theirs).
    again = await create(gateway, scim, okta_user(user["userName"], user["externalId"]))
    assert again["id"] == user["id"] and again["active"] is True


async def test_a_username_that_is_not_an_email_signs_in_with_the_primary_email(
    gateway: httpx.AsyncClient, scim: dict[str, str], admin_headers: dict[str, str]
) -> None:
    login = f"login-{unique_email()}".split("@")[0]
    work = unique_email("work")
    user = await create(
        gateway,
        scim,
        {
            "userName": login,
            "emails": [
                {"value": unique_email("home"), "type": "home"},
                {"value": work.upper(), "type": "work", "primary": True},
            ],
        },
    )
    assert user["userName"] == login and len(user["emails"]) == 2
    person = await gateway.get(f"/identity/v1/people/{user['id']}", headers=admin_headers)
    assert person.json()["email"] == work
    found = await _find(gateway, scim, f'userName eq "{login.upper()}"')
    assert [item["id"] for item in found["Resources"]] == [user["id"]]
    nobody = await create(gateway, scim, {"userName": f"volunteer-{unique_email()}"[:30]})
    assert nobody["emails"] == []  # no address: one that is never shown, nor delivered


async def test_removed_attributes_read_as_absent_while_the_person_keeps_safe_values(
    gateway: httpx.AsyncClient, scim: dict[str, str], admin_headers: dict[str, str]
) -> None:
    user = await create(
        gateway,
        scim,
        {
            **okta_user(unique_email("removal")),
            "preferredLanguage": "es",
            ENTERPRISE: {"department": "Field", "employeeNumber": "E-7"},
            UPSTANDER: {"roles": ["staff", "trainer"], "isLeadership": True, "location": "CA"},
        },
    )
    assert user["active"] is True and user["preferredLanguage"] == "es"
    for path in ("displayName", "preferredLanguage", "active", f"{UPSTANDER}:isLeadership"):
        removed = await patch(gateway, scim, user["id"], [{"op": "remove", "path": path}])
        assert removed.status_code == 200, removed.text
    body = (await gateway.get(f"{SCIM}/Users/{user['id']}", headers=scim)).json()
    for name in ("displayName", "preferredLanguage", "active"):
        assert name not in body, name
    assert body[UPSTANDER] == {"roles": ["staff", "trainer"], "location": "CA"}
    person = (await gateway.get(f"/identity/v1/people/{user['id']}", headers=admin_headers)).json()
    # Still active (a removal never deprovisions nor reactivates), Spanish, named from the
    # name parts; a removed isLeadership is no leadership.
    assert person["active"] is True and person["language"] == "es"
    assert person["name"] == "Test User" and person["is_leadership"] is False

    # Whole extensions: gone from the resource and from `schemas`; the roles with them.
    for urn in (ENTERPRISE, UPSTANDER):
        removed = await patch(gateway, scim, user["id"], [{"op": "remove", "path": urn}])
        assert removed.status_code == 200, removed.text
        assert urn not in removed.json() and urn not in removed.json()["schemas"]
    person = (await gateway.get(f"/identity/v1/people/{user['id']}", headers=admin_headers)).json()
    assert person["roles"] == [] and person["is_leadership"] is False

    # Set again, shown again; `active: false` still deprovisions at once.
    back = await patch(
        gateway,
        scim,
        user["id"],
        [{"op": "add", "value": {"displayName": "Tess", "active": False}}],
    )
    assert back.json()["displayName"] == "Tess" and back.json()["active"] is False


async def test_a_put_without_the_defaulted_attributes_keeps_the_persons_values(
    gateway: httpx.AsyncClient, scim: dict[str, str], admin_headers: dict[str, str]
) -> None:
    user = await create(
        gateway,
        scim,
        {**okta_user(unique_email("put")), UPSTANDER: {"isLeadership": True}},
    )
    off = await patch(gateway, scim, user["id"], [{"op": "replace", "value": {"active": False}}])
    assert off.json()["active"] is False
    bare = {"schemas": [CORE], "userName": user["userName"], "externalId": user["externalId"]}
    replaced = await gateway.put(f"{SCIM}/Users/{user['id']}", json=bare, headers=scim)
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    for name in ("displayName", "preferredLanguage", "active"):
        assert name not in body, name
    assert UPSTANDER in body and "isLeadership" not in body[UPSTANDER]
    person = (await gateway.get(f"/identity/v1/people/{user['id']}", headers=admin_headers)).json()
    # A PUT that leaves `active` out does not bring a deprovisioned person back, nor does it
    # take leadership away (set only through the Upstander extension).
    assert person["active"] is False and person["is_leadership"] is True
    # A value changed outside SCIM since is shown again.
    changed = await gateway.patch(
        f"/identity/v1/people/{user['id']}", json={"language": "es"}, headers=admin_headers
    )
    assert changed.status_code == 200, changed.text
    again = (await gateway.get(f"{SCIM}/Users/{user['id']}", headers=scim)).json()
    assert again["preferredLanguage"] == "es" and "active" not in again


async def test_patch_add_on_the_upstander_roles_sets_the_whole_set(
    gateway: httpx.AsyncClient, scim: dict[str, str]
) -> None:
    user = await create(
        gateway, scim, {**okta_user(unique_email("roles")), UPSTANDER: {"roles": ["trainer"]}}
    )
    added = await patch(
        gateway,
        scim,
        user["id"],
        [{"op": "add", "path": f"{UPSTANDER}:roles", "value": ["investigator"]}],
    )
    assert added.status_code == 200, added.text
    assert added.json()[UPSTANDER]["roles"] == ["investigator"]
    # One role more, keeping the others: the role's Group (RFC 7644 `add` appends members).
    grouped = await gateway.patch(
        f"{SCIM}/Groups/trainer",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
        },
        headers=scim,
    )
    assert grouped.status_code == 200, grouped.text
    body = (await gateway.get(f"{SCIM}/Users/{user['id']}", headers=scim)).json()
    assert body[UPSTANDER]["roles"] == ["investigator", "trainer"]
