"""People's external references in the identity API: created with a person, shown on them,
filterable (`?external_ref=system:id`), an upsert key for `POST /identity/v1/people` (a re-run
sync makes no duplicates), unique per organisation and system, set by PATCH, counted as a
change in the people change feed; another organisation's references never match."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PEOPLE = "/identity/v1/people"
PROBLEM = "application/problem+json"


def _ref() -> str:
    return f"E-{uuid.uuid4().hex[:8]}"


def _email() -> str:
    return f"ref.{uuid.uuid4().hex[:10]}@demo.example"


async def _by_ref(
    gateway: httpx.AsyncClient, headers: dict[str, str], value: str
) -> list[dict[str, Any]]:
    response = await gateway.get(PEOPLE, params={"external_ref": value}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _create(
    gateway: httpx.AsyncClient, headers: dict[str, str], refs: list[dict[str, str]], **fields: Any
) -> httpx.Response:
    body = {"email": _email(), "name": "Ref Person", **fields, "external_refs": refs}
    return await gateway.post(PEOPLE, json=body, headers=headers)


async def test_create_with_refs_then_re_post_updates_the_same_person(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    workday = _ref()
    created = await _create(
        gateway, admin_headers, [{"system": "workday", "id": workday}], title="Organizer"
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["external_refs"] == [{"system": "workday", "id": workday}]

    # The sync runs again, with a second system's reference and a new title: same person.
    payroll = _ref()
    again = await gateway.post(
        PEOPLE,
        json={
            "email": person["email"],
            "name": "Ref Person",
            "title": "Regional Organizer",
            "external_refs": [
                {"system": "workday", "id": workday},
                {"system": "payroll", "id": payroll},
            ],
        },
        headers=admin_headers,
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["id"] == person["id"]
    assert body["title"] == "Regional Organizer"
    assert body["roles"] == person["roles"]
    assert body["version"] == person["version"] + 1
    assert again.headers["ETag"] == f'"{body["version"]}"'
    assert body["external_refs"] == [
        {"system": "payroll", "id": payroll},
        {"system": "workday", "id": workday},
    ]

    # Nothing new to say: still the same person, no new version, no duplicate.
    third = await gateway.post(
        PEOPLE,
        json={
            "email": person["email"],
            "name": "Ref Person",
            "external_refs": body["external_refs"],
        },
        headers=admin_headers,
    )
    assert third.status_code == 200, third.text
    assert third.json()["version"] == body["version"]
    matches = await _by_ref(gateway, admin_headers, f"workday:{workday}")
    assert [item["id"] for item in matches] == [person["id"]]
    assert [p["id"] for p in await _by_ref(gateway, admin_headers, f"payroll:{payroll}")] == [
        person["id"]
    ]
    fetched = await gateway.get(f"{PEOPLE}/{person['id']}", headers=admin_headers)
    assert fetched.json()["external_refs"] == body["external_refs"]


async def test_filter_matches_only_the_exact_reference(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    ref = _ref()
    created = await _create(gateway, admin_headers, [{"system": "workday", "id": ref}])
    assert created.status_code == 201, created.text
    assert await _by_ref(gateway, admin_headers, f"payroll:{ref}") == []
    assert await _by_ref(gateway, admin_headers, f"workday:{ref}x") == []
    assert await _by_ref(gateway, admin_headers, f"WORKDAY:{ref}") == [created.json()]


async def test_references_naming_two_people_are_a_409(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    first, second = _ref(), _ref()
    one = await _create(gateway, admin_headers, [{"system": "workday", "id": first}])
    two = await _create(gateway, admin_headers, [{"system": "payroll", "id": second}])
    assert one.status_code == two.status_code == 201
    clash = await _create(
        gateway,
        admin_headers,
        [{"system": "workday", "id": first}, {"system": "payroll", "id": second}],
    )
    assert clash.status_code == 409, clash.text
    assert clash.headers["content-type"].startswith(PROBLEM)
    # PATCH cannot take another person's reference either.
    taken = await gateway.patch(
        f"{PEOPLE}/{two.json()['id']}",
        json={"external_refs": [{"system": "workday", "id": first}]},
        headers=admin_headers,
    )
    assert taken.status_code == 409, taken.text
    assert [p["id"] for p in await _by_ref(gateway, admin_headers, f"workday:{first}")] == [
        one.json()["id"]
    ]


async def test_one_reference_per_system(gateway: httpx.AsyncClient, admin_headers: dict[str, str]):
    twice = await _create(
        gateway,
        admin_headers,
        [{"system": "workday", "id": _ref()}, {"system": "workday", "id": _ref()}],
    )
    assert twice.status_code == 409, twice.text
    assert twice.headers["content-type"].startswith(PROBLEM)
    bad = await _create(gateway, admin_headers, [{"system": "Work Day", "id": _ref()}])
    assert bad.status_code == 422, bad.text


async def test_malformed_filter_is_a_400_problem(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    for value in ("workday", "workday:", ":E-1", " : "):
        response = await gateway.get(PEOPLE, params={"external_ref": value}, headers=admin_headers)
        assert response.status_code == 400, (value, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)


async def test_another_orgs_reference_never_matches(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b
):
    ref = _ref()
    ours = await _create(gateway, admin_headers, [{"system": "workday", "id": ref}])
    assert ours.status_code == 201, ours.text
    assert await _by_ref(gateway, org_b.headers, f"workday:{ref}") == []
    # The same reference in the other org names their own, new person: no upsert across orgs.
    theirs = await gateway.post(
        PEOPLE,
        json={
            "email": f"ref.{uuid.uuid4().hex[:10]}@beta.example",
            "name": "Beta Ref",
            "external_refs": [{"system": "workday", "id": ref}],
        },
        headers=org_b.headers,
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != ours.json()["id"]
    assert [p["id"] for p in await _by_ref(gateway, admin_headers, f"workday:{ref}")] == [
        ours.json()["id"]
    ]
    assert [p["id"] for p in await _by_ref(gateway, org_b.headers, f"workday:{ref}")] == [
        theirs.json()["id"]
    ]


async def test_patch_sets_references_and_the_feed_shows_the_change(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    created = await _create(gateway, admin_headers, [])
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["external_refs"] == []
    start = await gateway.get(f"{PEOPLE}/changes", params={"limit": 100}, headers=admin_headers)
    cursor = start.json()["next_cursor"]
    while start.json()["has_more"]:
        start = await gateway.get(
            f"{PEOPLE}/changes", params={"cursor": cursor, "limit": 100}, headers=admin_headers
        )
        cursor = start.json()["next_cursor"]

    ref = _ref()
    patched = await gateway.patch(
        f"{PEOPLE}/{person['id']}",
        json={"external_refs": [{"system": "workday", "id": ref}]},
        headers={**admin_headers, "If-Match": f'"{person["version"]}"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["external_refs"] == [{"system": "workday", "id": ref}]
    assert patched.json()["version"] == person["version"] + 1
    assert [p["id"] for p in await _by_ref(gateway, admin_headers, f"workday:{ref}")] == [
        person["id"]
    ]
    feed = await gateway.get(f"{PEOPLE}/changes", params={"cursor": cursor}, headers=admin_headers)
    assert feed.status_code == 200, feed.text
    mine = [item for item in feed.json()["items"] if item["person_id"] == person["id"]]
    assert [item["change"] for item in mine] == ["updated"]
    assert mine[0]["person"]["external_refs"] == [{"system": "workday", "id": ref}]

    # `[]` removes them; a name-only PATCH leaves them alone.
    renamed = await gateway.patch(
        f"{PEOPLE}/{person['id']}", json={"name": "Renamed"}, headers=admin_headers
    )
    assert renamed.json()["external_refs"] == [{"system": "workday", "id": ref}]
    cleared = await gateway.patch(
        f"{PEOPLE}/{person['id']}", json={"external_refs": []}, headers=admin_headers
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["external_refs"] == []
    assert await _by_ref(gateway, admin_headers, f"workday:{ref}") == []
    null = await gateway.patch(
        f"{PEOPLE}/{person['id']}", json={"external_refs": None}, headers=admin_headers
    )
    assert null.status_code == 422, null.text


async def test_openapi_documents_the_filter_and_the_field(gateway: httpx.AsyncClient):
    spec = (await gateway.get("/openapi.json")).json()
    listing = spec["paths"]["/identity/v1/people"]["get"]
    (param,) = [p for p in listing["parameters"] if p["name"] == "external_ref"]
    examples = param.get("examples") or param["schema"].get("examples")
    assert examples == ["workday:E-1042"]
    create = spec["paths"]["/identity/v1/people"]["post"]
    assert "200" in create["responses"] and "409" in create["responses"]
    person = spec["components"]["schemas"]["PersonOut"]
    assert person["properties"]["external_refs"]["examples"] == [
        [{"system": "workday", "id": "E-1042"}]
    ]
