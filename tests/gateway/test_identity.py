"""The identity API: admin-only, org-scoped people and clients, validation, ETags."""

from __future__ import annotations

import httpx
from identity_support import bearer, password_token

PROBLEM = "application/problem+json"


async def _person_by_email(gateway: httpx.AsyncClient, headers: dict[str, str], email: str) -> dict:
    response = await gateway.get("/identity/v1/people", params={"email": email}, headers=headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1
    return items[0]


async def test_admin_reads_their_own_org(gateway: httpx.AsyncClient, admin_headers: dict[str, str]):
    current = await gateway.get("/identity/v1/orgs/current", headers=admin_headers)
    assert current.status_code == 200
    assert current.json()["slug"] == "demo"
    listing = await gateway.get("/identity/v1/orgs", headers=admin_headers)
    assert [org["slug"] for org in listing.json()["items"]] == ["demo"]


async def test_non_admin_is_forbidden(gateway: httpx.AsyncClient):
    token = await password_token(gateway, "staff@demo.example")
    response = await gateway.get("/identity/v1/people", headers=bearer(token["access_token"]))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_handlers_read_the_directory_but_only_admins_change_it(
    gateway: httpx.AsyncClient,
):
    token = await password_token(gateway, "case_manager@demo.example")
    headers = bearer(token["access_token"])
    listing = await gateway.get("/identity/v1/people?role=investigator", headers=headers)
    assert listing.status_code == 200
    # The gateway's database is shared by every module of the session: other tests may have
    # added investigators of their own.
    people = listing.json()["items"]
    assert "investigator@demo.example" in [p["email"] for p in people]
    assert all("investigator" in p["roles"] for p in people)
    created = await gateway.post(
        "/identity/v1/people", json={"email": "x@demo.example", "name": "X"}, headers=headers
    )
    assert created.status_code == 403


async def test_missing_token_is_401(gateway: httpx.AsyncClient):
    response = await gateway.get("/identity/v1/people")
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


async def test_demo_reporting_line(gateway: httpx.AsyncClient, admin_headers: dict[str, str]):
    leader = await _person_by_email(gateway, admin_headers, "leader@demo.example")
    supervisor = await _person_by_email(gateway, admin_headers, "supervisor@demo.example")
    staff = await _person_by_email(gateway, admin_headers, "STAFF@demo.example")
    assert leader["is_leadership"] is True and leader["title"] == "Campaign Manager"
    assert supervisor["manager_id"] == leader["id"]
    assert staff["manager_id"] == supervisor["id"]


async def test_list_people_pages_with_a_cursor_and_filters_by_role(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (
            await gateway.get("/identity/v1/people", params=params, headers=admin_headers)
        ).json()
        seen += [person["id"] for person in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 9
    staff = await gateway.get(
        "/identity/v1/people", params={"role": "staff"}, headers=admin_headers
    )
    emails = {person["email"] for person in staff.json()["items"]}
    assert {"staff@demo.example", "leader@demo.example", "supervisor@demo.example"} <= emails
    assert "admin@demo.example" not in emails


async def test_create_person_lowercases_email_and_can_sign_in(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    response = await gateway.post(
        "/identity/v1/people",
        json={
            "email": "New.Organizer@Demo.Example",
            "name": "Nia Organizer",
            "roles": ["staff", "trainer"],
            "location": "CA",
            "language": "es",
            "password": "a long enough passphrase",
        },
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    person = response.json()
    assert person["email"] == "new.organizer@demo.example"
    assert person["has_password"] is True and "password" not in person
    assert response.headers["etag"] == '"1"'
    token = await password_token(gateway, "new.organizer@demo.example", "a long enough passphrase")
    assert token["access_token"]

    duplicate = await gateway.post(
        "/identity/v1/people",
        json={"email": "new.organizer@demo.example", "name": "Twin"},
        headers=admin_headers,
    )
    assert duplicate.status_code == 409


async def test_create_person_rejects_unknown_fields_and_oversized_strings(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    unknown = await gateway.post(
        "/identity/v1/people",
        json={"email": "x@demo.example", "name": "X", "is_admin": True},
        headers=admin_headers,
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert any(e["field"] == "body.is_admin" for e in unknown.json()["errors"])

    oversized = await gateway.post(
        "/identity/v1/people",
        json={"email": "y@demo.example", "name": "Y" * 201},
        headers=admin_headers,
    )
    assert oversized.status_code == 422
    assert oversized.headers["content-type"].startswith(PROBLEM)
    assert any(e["field"] == "body.name" for e in oversized.json()["errors"])

    bad_role = await gateway.post(
        "/identity/v1/people",
        json={"email": "z@demo.example", "name": "Z", "roles": ["superuser"]},
        headers=admin_headers,
    )
    assert bad_role.status_code == 422


async def test_patch_person_honours_if_match(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    created = await gateway.post(
        "/identity/v1/people",
        json={"email": "etag@demo.example", "name": "Eti Tag"},
        headers=admin_headers,
    )
    person_id = created.json()["id"]
    fetched = await gateway.get(f"/identity/v1/people/{person_id}", headers=admin_headers)
    etag = fetched.headers["etag"]

    updated = await gateway.patch(
        f"/identity/v1/people/{person_id}",
        json={"title": "Volunteer Lead"},
        headers=admin_headers | {"If-Match": etag},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["title"] == "Volunteer Lead"
    assert updated.headers["etag"] == '"2"'

    stale = await gateway.patch(
        f"/identity/v1/people/{person_id}",
        json={"title": "Lost Update"},
        headers=admin_headers | {"If-Match": etag},
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith(PROBLEM)


async def test_manager_must_not_create_a_cycle(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    leader = await _person_by_email(gateway, admin_headers, "leader@demo.example")
    staff = await _person_by_email(gateway, admin_headers, "staff@demo.example")
    response = await gateway.patch(
        f"/identity/v1/people/{leader['id']}",
        json={"manager_id": staff["id"]},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.manager_id"


async def test_deactivated_person_cannot_sign_in_or_refresh(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    created = await gateway.post(
        "/identity/v1/people",
        json={"email": "leaving@demo.example", "name": "Lee Ving", "password": "goodbye-password"},
        headers=admin_headers,
    )
    tokens = await password_token(gateway, "leaving@demo.example", "goodbye-password")
    deleted = await gateway.delete(
        f"/identity/v1/people/{created.json()['id']}", headers=admin_headers
    )
    assert deleted.status_code == 204
    sign_in = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "leaving@demo.example",
            "password": "goodbye-password",
        },
    )
    assert sign_in.status_code == 400
    refresh = await gateway.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refresh.status_code == 400


async def test_create_client_returns_the_secret_once_and_it_works(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    created = await gateway.post(
        "/identity/v1/clients",
        json={"name": "LMS", "scopes": ["training:write"], "roles": ["trainer"]},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["client_secret"]
    fetched = await gateway.get(f"/identity/v1/clients/{body['id']}", headers=admin_headers)
    assert fetched.status_code == 200 and "client_secret" not in fetched.json()
    token = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], secret),
    )
    assert token.status_code == 200

    removed = await gateway.delete(f"/identity/v1/clients/{body['id']}", headers=admin_headers)
    assert removed.status_code == 204
    refused = await gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], secret),
    )
    assert refused.status_code == 401


async def test_clients_cannot_be_given_platform_scopes(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    response = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Sneaky", "scopes": ["events:publish"]},
        headers=admin_headers,
    )
    assert response.status_code == 422


async def test_other_orgs_people_and_clients_are_404(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b
):
    for path in (
        f"/identity/v1/people/{org_b.person_id}",
        f"/identity/v1/clients/{org_b.client_pk}",
    ):
        response = await gateway.get(path, headers=admin_headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith(PROBLEM)
    patch = await gateway.patch(
        f"/identity/v1/people/{org_b.person_id}", json={"name": "Hijack"}, headers=admin_headers
    )
    assert patch.status_code == 404
    delete = await gateway.delete(f"/identity/v1/people/{org_b.person_id}", headers=admin_headers)
    assert delete.status_code == 404

    # And the other way round: org B's admin sees none of the demo org.
    demo_admin = await _person_by_email(gateway, admin_headers, "admin@demo.example")
    response = await gateway.get(f"/identity/v1/people/{demo_admin['id']}", headers=org_b.headers)
    assert response.status_code == 404
    listing = await gateway.get("/identity/v1/people", headers=org_b.headers)
    assert {p["email"] for p in listing.json()["items"]} == {
        "admin@beta.example",
        "worker@beta.example",
    }


async def test_manager_from_another_org_is_refused(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b
):
    response = await gateway.post(
        "/identity/v1/people",
        json={"email": "cross@demo.example", "name": "Cross", "manager_id": str(org_b.person_id)},
        headers=admin_headers,
    )
    assert response.status_code == 422


async def test_same_email_in_two_orgs_needs_the_org_slug(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str], org_b
):
    for headers in (admin_headers, org_b.headers):
        created = await gateway.post(
            "/identity/v1/people",
            json={
                "email": "twice@example.org",
                "name": "Two Jobs",
                "password": "two-jobs-password",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
    ambiguous = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "twice@example.org",
            "password": "two-jobs-password",
        },
    )
    # Told plainly, to whoever knows the password (tests/gateway/test_orgs_api.py has more).
    assert ambiguous.status_code == 400
    assert ambiguous.json()["error"] == "invalid_request"
    assert ambiguous.json()["type"].endswith("/org-required")
    token = await password_token(gateway, "twice@example.org", "two-jobs-password", org="beta")
    assert token["access_token"]


async def test_openapi_documents_identity_operations(gateway: httpx.AsyncClient):
    spec = (await gateway.get("/openapi.json")).json()
    operation_ids = {
        operation["operationId"] for path in spec["paths"].values() for operation in path.values()
    }
    assert {
        "create_token",
        "get_jwks",
        "list_people",
        "create_person",
        "get_person",
        "update_person",
        "deactivate_person",
        "list_clients",
        "create_client",
        "get_client",
        "deactivate_client",
        "list_orgs",
        "get_current_org",
        "update_current_org",
    } <= operation_ids
