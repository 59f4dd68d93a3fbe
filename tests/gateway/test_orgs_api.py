"""The organisations API, through the gateway: a platform operator (an API client configured in
settings, scope `platform:orgs`) creates an organisation and invites its first admin by a
one-time link; the admin sets a password with it, once, before it expires; suspending the
organisation stops its tokens and its sign-ins, reactivating restores them. No organisation's
admin holds or grants the operator's scope, and the operator reads nothing inside an
organisation. An email in several organisations signing in without `org` gets a clear error."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from identity_support import bearer, password_token
from sqlalchemy import select, update

from upstander.gateway.identity.org_tables import OrgInvitation
from upstander.gateway.identity.orgs import ensure_operator_client
from upstander.gateway.models import ApiClient, Person
from upstander.gateway.settings import DEV_OPERATOR_SECRET

PROBLEM = "application/problem+json"
ORGS = "/identity/v1/orgs"
ACCEPT = "/identity/v1/invitations/accept"
OPERATOR_ID = "platform-operator"
PASSWORD = "a-long-admin-passphrase"


async def _client_token(
    gateway: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        form["scope"] = scope
    return await gateway.post("/auth/token", data=form)


async def _operator(gateway: httpx.AsyncClient) -> dict[str, str]:
    response = await _client_token(gateway, OPERATOR_ID, DEV_OPERATOR_SECRET)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "platform:orgs"
    return bearer(response.json()["access_token"])


def _slug() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


def _token_of(invitation: dict[str, Any]) -> str:
    url = str(invitation["url"])
    assert "#token=" in url
    return url.split("#token=", 1)[1]


async def _create_org(
    gateway: httpx.AsyncClient, operator: dict[str, str], email: str | None = None
) -> dict[str, Any]:
    slug = _slug()
    response = await gateway.post(
        ORGS,
        json={
            "slug": slug,
            "name": f"Campaign {slug}",
            "admin": {"email": email or f"chair@{slug}.example", "name": "Robin Chair"},
        },
        headers=operator,
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert response.headers["location"] == f"{ORGS}/{body['id']}"
    return body


async def _onboard(
    gateway: httpx.AsyncClient, operator: dict[str, str], email: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A new organisation whose admin accepted their invitation and signed in."""
    org = await _create_org(gateway, operator, email)
    accepted = await gateway.post(
        ACCEPT, json={"token": _token_of(org["invitation"]), "password": PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    token = await password_token(gateway, org["invitation"]["email"], PASSWORD, org=org["slug"])
    return org, bearer(token["access_token"])


# ----------------------------------------------------------------------------- onboarding


async def test_an_operator_creates_an_org_whose_admin_sets_a_password_by_the_link_once(
    gateway: httpx.AsyncClient,
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    invitation = org["invitation"]
    assert org["active"] is True
    assert invitation["url"].startswith("http://127.0.0.1:8000/invite#token=")

    # Before accepting, the admin has no password: no sign-in.
    refused = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": invitation["email"],
            "password": PASSWORD,
            "org": org["slug"],
        },
    )
    assert refused.status_code == 400

    token = _token_of(invitation)
    accepted = await gateway.post(ACCEPT, json={"token": token, "password": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "org": org["slug"],
        "email": invitation["email"],
        "person_id": invitation["person_id"],
    }
    signed_in = await password_token(gateway, invitation["email"], PASSWORD, org=org["slug"])
    admin = bearer(signed_in["access_token"])
    current = await gateway.get("/identity/v1/orgs/current", headers=admin)
    assert current.json()["id"] == org["id"]
    me = await gateway.get(f"/identity/v1/people/{invitation['person_id']}", headers=admin)
    assert me.json()["roles"] == ["admin"]

    again = await gateway.post(ACCEPT, json={"token": token, "password": "another-password-9"})
    assert again.status_code == 400
    assert again.headers["content-type"].startswith(PROBLEM)
    assert again.json()["type"].endswith("/invalid-invitation")
    # The password set first still opens the account.
    assert await password_token(gateway, invitation["email"], PASSWORD, org=org["slug"])


async def test_the_invitation_is_stored_hashed_and_expires(
    gateway: httpx.AsyncClient, gateway_app: FastAPI
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    token = _token_of(org["invitation"])
    async with gateway_app.state.sessionmaker() as session:
        row = await session.scalar(
            select(OrgInvitation).where(OrgInvitation.org_id == uuid.UUID(org["id"]))
        )
        assert row is not None and token not in row.token_hash and len(row.token_hash) == 64
        await session.execute(
            update(OrgInvitation)
            .where(OrgInvitation.id == row.id)
            .values(expires_at=gateway_app.state.clock.now() - timedelta(seconds=1))
        )
        await session.commit()

    expired = await gateway.post(ACCEPT, json={"token": token, "password": PASSWORD})
    assert expired.status_code == 400
    assert expired.json()["type"].endswith("/invalid-invitation")
    unknown = await gateway.post(ACCEPT, json={"token": "x" * 43, "password": PASSWORD})
    assert unknown.status_code == 400


async def test_a_new_invitation_replaces_the_one_before(gateway: httpx.AsyncClient):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    first = _token_of(org["invitation"])
    again = await gateway.post(
        f"{ORGS}/{org['id']}/invitations",
        json={"email": org["invitation"]["email"], "name": "Robin Chair"},
        headers=operator,
    )
    assert again.status_code == 201, again.text
    assert again.json()["person_id"] == org["invitation"]["person_id"]

    old = await gateway.post(ACCEPT, json={"token": first, "password": PASSWORD})
    new = await gateway.post(ACCEPT, json={"token": _token_of(again.json()), "password": PASSWORD})
    assert old.status_code == 400
    assert new.status_code == 200, new.text


async def test_a_slug_in_use_is_a_conflict_and_a_bad_one_a_validation_error(
    gateway: httpx.AsyncClient,
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    admin = {"email": "x@example.org", "name": "X"}
    taken = await gateway.post(
        ORGS, json={"slug": org["slug"], "name": "Copy", "admin": admin}, headers=operator
    )
    invalid = await gateway.post(
        ORGS, json={"slug": "Not A Slug", "name": "Bad", "admin": admin}, headers=operator
    )
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith(PROBLEM)
    assert invalid.status_code == 422


# ----------------------------------------------------------------------------- who may


async def test_operators_list_and_read_every_org_and_admins_only_their_own(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await gateway.get(ORGS, params=params, headers=operator)
        assert page.status_code == 200, page.text
        seen += [item["slug"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert {"demo", org["slug"]} <= set(seen)
    one = await gateway.get(f"{ORGS}/{org['id']}", headers=operator)
    assert one.json()["slug"] == org["slug"]
    assert (await gateway.get(f"{ORGS}/{uuid.uuid4()}", headers=operator)).status_code == 404

    own = await gateway.get(ORGS, headers=admin_headers)
    assert [item["slug"] for item in own.json()["items"]] == ["demo"]


async def test_no_org_admin_holds_or_grants_the_operators_scope(
    gateway: httpx.AsyncClient, admin_headers: dict[str, str]
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    for method, path in (
        ("POST", ORGS),
        ("GET", f"{ORGS}/{org['id']}"),
        ("POST", f"{ORGS}/{org['id']}/suspension"),
        ("DELETE", f"{ORGS}/{org['id']}/suspension"),
        ("POST", f"{ORGS}/{org['id']}/invitations"),
    ):
        body = {"slug": _slug(), "name": "N", "admin": {"email": "a@b.example", "name": "A"}}
        response = await gateway.request(
            method, path, json=body if method == "POST" else None, headers=admin_headers
        )
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "insufficient_scope"

    narrowed = await gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin@demo.example",
            "password": "upstander-demo",
            "scope": "platform:orgs",
        },
    )
    assert narrowed.status_code == 400
    assert narrowed.json()["error"] == "invalid_scope"
    granted = await gateway.post(
        "/identity/v1/clients",
        json={"name": "Wannabe operator", "scopes": ["platform:orgs"]},
        headers=admin_headers,
    )
    assert granted.status_code in (403, 422)
    still = await gateway.get(f"{ORGS}/{org['id']}", headers=admin_headers)
    assert still.status_code == 403


async def test_the_operator_reads_nothing_inside_an_org(gateway: httpx.AsyncClient):
    operator = await _operator(gateway)
    for path in ("/identity/v1/people", "/identity/v1/clients", "/identity/v1/orgs/current"):
        response = await gateway.get(path, headers=operator)
        assert response.status_code == 403, (path, response.text)


# ----------------------------------------------------------------------------- suspension


async def test_a_suspended_orgs_tokens_stop_and_its_sign_ins_are_refused(
    gateway: httpx.AsyncClient,
):
    operator = await _operator(gateway)
    org, admin = await _onboard(gateway, operator)
    email = org["invitation"]["email"]
    client = await gateway.post(
        "/identity/v1/clients", json={"name": "HR sync", "scopes": ["people:read"]}, headers=admin
    )
    assert client.status_code == 201, client.text
    client_id, secret = client.json()["client_id"], client.json()["client_secret"]
    issued = await _client_token(gateway, client_id, secret)
    client_headers = bearer(issued.json()["access_token"])
    refresh = (await password_token(gateway, email, PASSWORD, org=org["slug"]))["refresh_token"]
    assert (await gateway.get("/identity/v1/people", headers=client_headers)).status_code == 200

    suspended = await gateway.post(f"{ORGS}/{org['id']}/suspension", headers=operator)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["active"] is False

    for headers in (admin, client_headers):
        response = await gateway.get("/identity/v1/people", headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["type"].endswith("/token-revoked")
    sign_in = await gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    assert sign_in.status_code == 400 and sign_in.json()["error"] == "invalid_grant"
    assert (await _client_token(gateway, client_id, secret)).status_code == 401
    refreshed = await gateway.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert refreshed.status_code == 400
    listed = await gateway.get(ORGS, params={"active": "false"}, headers=operator)
    assert org["id"] in {item["id"] for item in listed.json()["items"]}

    reactivated = await gateway.delete(f"{ORGS}/{org['id']}/suspension", headers=operator)
    assert reactivated.json()["active"] is True
    again = await password_token(gateway, email, PASSWORD, org=org["slug"])
    people = await gateway.get("/identity/v1/people", headers=bearer(again["access_token"]))
    assert people.status_code == 200


async def test_a_suspended_orgs_invitation_cannot_be_accepted(gateway: httpx.AsyncClient):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    await gateway.post(f"{ORGS}/{org['id']}/suspension", headers=operator)
    response = await gateway.post(
        ACCEPT, json={"token": _token_of(org["invitation"]), "password": PASSWORD}
    )
    assert response.status_code == 400


# ----------------------------------------------------------------------------- sign-in


async def test_an_email_in_several_orgs_needs_org_and_is_told_so(gateway: httpx.AsyncClient):
    operator = await _operator(gateway)
    email = f"both-{uuid.uuid4().hex[:8]}@example.org"
    first, _ = await _onboard(gateway, operator, email)
    await _onboard(gateway, operator, email)
    form = {"grant_type": "password", "username": email, "password": PASSWORD}

    ambiguous = await gateway.post("/auth/token", data=form)
    assert ambiguous.status_code == 400
    assert ambiguous.headers["content-type"].startswith(PROBLEM)
    body = ambiguous.json()
    assert body["error"] == "invalid_request"
    assert body["type"] == "https://upstander.dev/problems/org-required"
    assert "org" in body["error_description"] and body["parameter"] == "org"
    # Nothing is said to someone without the password; no organisation is ever named.
    wrong = await gateway.post("/auth/token", data={**form, "password": "not-the-password"})
    assert wrong.json()["error"] == "invalid_grant"
    assert first["slug"] not in ambiguous.text

    chosen = await password_token(gateway, email, PASSWORD, org=first["slug"])
    assert chosen["access_token"]


# ----------------------------------------------------------------------------- the operator


async def test_the_operator_client_follows_the_settings(
    gateway: httpx.AsyncClient, gateway_app: FastAPI
):
    operator = await _operator(gateway)
    settings = gateway_app.state.settings
    rotated = settings.model_copy(
        update={"operator_client_id": "ops-rotated", "operator_client_secret": "s" * 24}
    )
    try:
        async with gateway_app.state.sessionmaker() as session:
            await ensure_operator_client(session, rotated)
            await session.commit()
        # The old operator is deactivated: its token stops, and it gets no new one.
        stale = await gateway.get(ORGS, headers=operator)
        assert stale.status_code == 401
        assert (await _client_token(gateway, OPERATOR_ID, DEV_OPERATOR_SECRET)).status_code == 401
        new = await _client_token(gateway, "ops-rotated", "s" * 24)
        assert new.status_code == 200, new.text
        listed = await gateway.get(ORGS, headers=bearer(new.json()["access_token"]))
        assert listed.status_code == 200
    finally:
        async with gateway_app.state.sessionmaker() as session:
            await ensure_operator_client(session, settings)
            await session.commit()
            kinds = (
                await session.execute(
                    select(ApiClient.client_id, ApiClient.active).where(
                        ApiClient.kind == "operator"
                    )
                )
            ).all()
    assert dict(kinds) == {OPERATOR_ID: True, "ops-rotated": False}
    assert (await gateway.get(ORGS, headers=await _operator(gateway))).status_code == 200


async def test_people_of_an_org_made_by_the_operator_are_ordinary_people(
    gateway: httpx.AsyncClient, gateway_app: FastAPI
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    async with gateway_app.state.sessionmaker() as session:
        person = await session.get(Person, uuid.UUID(org["invitation"]["person_id"]))
        assert person is not None
        assert person.password_hash is None and person.roles == ["admin"]
        assert str(person.org_id) == org["id"]


# ----------------------------------------------------------------------------- the link, docs


async def test_the_invitation_link_opens_a_page_that_keeps_the_token_out_of_requests(
    gateway: httpx.AsyncClient,
):
    operator = await _operator(gateway)
    org = await _create_org(gateway, operator)
    url = httpx.URL(org["invitation"]["url"])
    assert url.query == b"" and url.fragment.startswith("token=")

    page = await gateway.get(url.path)
    script = await gateway.get("/invite.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/invite.js"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert script.status_code == 200 and "/identity/v1/invitations/accept" in script.text


async def test_the_served_document_describes_the_orgs_api_for_generators(
    gateway: httpx.AsyncClient,
):
    document = (await gateway.get("/openapi.json")).json()
    create = document["paths"][ORGS]["post"]
    suspend = document["paths"][f"{ORGS}/{{org_id}}/suspension"]["post"]
    accept = document["paths"][ACCEPT]["post"]

    assert {"OperatorOAuth2": ["platform:orgs"]} in create["security"]
    flows = document["components"]["securitySchemes"]["OperatorOAuth2"]["flows"]
    assert set(flows["clientCredentials"]["scopes"]) == {"platform:orgs"}
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in create["parameters"]
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in suspend["parameters"]
    assert "Retry-After" in create["responses"]["429"]["headers"]
    assert accept["security"] == [{}] and "parameters" not in accept  # no token: no key
