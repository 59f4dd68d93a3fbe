"""Scopes are the unit of authority, across the platform: an admin registers least-privilege
API clients and each one can do exactly what its scopes say, through the gateway, in every
service. An HR sync manages people and reads no case; a BI client reads case statistics and
nothing else; a campaign frontend submits reports and nothing else (identified reports with a
person's token narrowed to `intake:write`). Case restrictions still bind a client on top of
its scopes, and the merged OpenAPI document says which scopes each operation needs."""

from __future__ import annotations

import uuid
from typing import Any

from harness import Platform

from upstander.gateway.bootstrap import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from upstander.kit.auth import PrincipalKind

ADMIN = "admin@demo.example"
CASES = "/cases/v1/cases?limit=50"
STATS = "/cases/v1/stats"
PEOPLE = "/identity/v1/people"
COMPLIANCE = "/training/v1/compliance"
WEBHOOKS = "/notify/v1/webhooks"
# Routes that no scope of a least-privilege client below opens, with what is sent to them.
ELSEWHERE: list[tuple[str, str, Any]] = [
    ("GET", CASES, None),
    ("GET", STATS, None),
    ("GET", "/cases/v1/audit", None),
    ("GET", PEOPLE, None),
    ("GET", COMPLIANCE, None),
    ("GET", WEBHOOKS, None),
    ("PUT", "/intake/v1/forms/demo", {}),
    ("GET", "/identity/v1/clients", None),
]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def register(platform: Platform, scopes: list[str], name: str) -> dict[str, str]:
    created = await platform.gateway.post(
        "/identity/v1/clients",
        json={"name": name, "scopes": scopes},
        headers=await platform.auth(ADMIN),
    )
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


async def client_token(platform: Platform, client: dict[str, str]) -> str:
    response = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def least_privilege(platform: Platform, scopes: list[str]) -> dict[str, str]:
    client = await register(platform, scopes, f"Least privilege {uuid.uuid4().hex[:6]}")
    return bearer(await client_token(platform, client))


async def refused_elsewhere(
    platform: Platform, headers: dict[str, str], allowed: set[str]
) -> dict[str, int]:
    """The status of every route in ELSEWHERE the client is not meant to reach."""
    statuses = {}
    for method, path, body in ELSEWHERE:
        if path in allowed:
            continue
        response = await platform.gateway.request(method, path, json=body, headers=headers)
        statuses[f"{method} {path}"] = response.status_code
    return statuses


def report(mode: str) -> dict[str, Any]:
    return {
        "org": "demo",
        "mode": mode,
        "description": "Scopes test: comments at the field office.",
        "categories": ["harassment"],
    }


async def test_an_hr_sync_client_manages_people_and_reads_no_case(platform: Platform) -> None:
    headers = await least_privilege(platform, ["people:read", "people:write"])
    email = f"hr-sync-{uuid.uuid4().hex[:8]}@demo.example"

    created = await platform.gateway.post(
        PEOPLE, json={"email": email, "name": "Sam Sync", "roles": ["staff"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    person = created.json()
    changed = await platform.gateway.patch(
        f"{PEOPLE}/{person['id']}",
        json={"title": "Field Organizer"},
        headers={**headers, "if-match": f'"{person["version"]}"'},
    )
    listed = await platform.gateway.get(f"{PEOPLE}?email={email}", headers=headers)
    removed = await platform.gateway.delete(f"{PEOPLE}/{person['id']}", headers=headers)

    assert changed.status_code == 200, changed.text
    assert [p["id"] for p in listed.json()["items"]] == [person["id"]]
    assert removed.status_code == 204
    assert set((await refused_elsewhere(platform, headers, {PEOPLE})).values()) == {403}


async def test_a_bi_client_reads_case_statistics_and_nothing_else(platform: Platform) -> None:
    headers = await least_privilege(platform, ["stats:read"])

    stats = await platform.gateway.get(STATS, headers=headers)
    case_list = await platform.gateway.get(CASES, headers=headers)

    assert stats.status_code == 200, stats.text
    assert case_list.status_code == 403
    assert case_list.json()["missing_scopes"] == ["cases:read"]
    assert set((await refused_elsewhere(platform, headers, {STATS})).values()) == {403}


async def test_a_frontend_client_submits_anonymous_reports_and_nothing_else(
    platform: Platform,
) -> None:
    headers = await least_privilege(platform, ["intake:write"])

    anonymous = await platform.gateway.post("/intake/v1/reports", json=report("anonymous"))
    with_token = await platform.gateway.post(
        "/intake/v1/reports", json=report("anonymous"), headers=headers
    )
    # An identified report names a person: a client acts for nobody.
    identified = await platform.gateway.post(
        "/intake/v1/reports", json=report("identified"), headers=headers
    )

    assert anonymous.status_code == with_token.status_code == 201, with_token.text
    assert with_token.json()["receipt_code"]
    assert identified.status_code == 403, identified.text
    assert set((await refused_elsewhere(platform, headers, set())).values()) == {403}


async def test_a_frontend_signs_a_person_in_for_intake_only_and_they_report_identified(
    platform: Platform,
) -> None:
    signed_in = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "case_manager@demo.example",
            "password": "upstander-demo",
            "scope": "intake:write",
        },
    )
    assert signed_in.status_code == 200, signed_in.text
    headers = bearer(signed_in.json()["access_token"])

    identified = await platform.gateway.post(
        "/intake/v1/reports", json=report("identified"), headers=headers
    )
    # The same person with a full token handles cases; this narrowed one does not.
    case_list = await platform.gateway.get(CASES, headers=headers)

    assert identified.status_code == 201, identified.text
    assert identified.json().get("receipt_code") is None
    assert case_list.status_code == 403, case_list.text
    assert case_list.json()["missing_scopes"] == ["cases:read"]


async def test_the_demo_clients_cases_read_now_lists_cases(platform: Platform) -> None:
    await platform.gateway.post("/intake/v1/reports", json=report("anonymous"))
    await platform.drain()
    token = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "cases:read"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert token.status_code == 200, token.text
    headers = bearer(token.json()["access_token"])

    listed = await platform.gateway.get(CASES, headers=headers)
    one = await platform.gateway.get(
        f"/cases/v1/cases/{listed.json()['items'][0]['id']}", headers=headers
    )
    report_text = await platform.gateway.get(
        f"/cases/v1/cases/{listed.json()['items'][0]['id']}/report", headers=headers
    )

    assert listed.status_code == 200, listed.text
    assert listed.json()["items"], "the admin who registered it sees cases; so does it"
    assert one.status_code == 200
    # Metadata only: what was reported needs cases:content.
    assert report_text.status_code == 403
    assert report_text.json()["missing_scopes"] == ["cases:content"]


async def test_a_made_up_scope_is_refused_at_registration_and_at_the_token_endpoint(
    platform: Platform,
) -> None:
    registered = await platform.gateway.post(
        "/identity/v1/clients",
        json={"name": "Made up", "scopes": ["identity:write"]},
        headers=await platform.auth(ADMIN),
    )
    requested = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "identity:write"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )

    assert registered.status_code == 422, registered.text
    assert requested.status_code == 400
    assert requested.json()["error"] == "invalid_scope"


async def test_a_case_hidden_from_the_owner_is_hidden_from_a_client_with_cases_read(
    platform: Platform,
) -> None:
    """Restrictions bind clients on top of scopes: a case naming the admin who registered a
    client is invisible to that client, whatever its scopes."""
    admin = await platform.gateway.get(
        f"{PEOPLE}?email={ADMIN}", headers=await platform.auth(ADMIN)
    )
    admin_id = admin.json()["items"][0]["id"]
    headers = await least_privilege(platform, ["cases:read", "cases:content"])
    before = {c["id"] for c in (await platform.gateway.get(CASES, headers=headers)).json()["items"]}
    naming = {
        **report("confidential"),
        "reporter": {"name": "Pat Doe", "contact": "pat@example.org"},
        "people_involved": [{"person_id": admin_id, "role": "subject"}],
    }
    filed = await platform.gateway.post("/intake/v1/reports", json=naming)
    assert filed.status_code == 201, filed.text
    await platform.drain()

    after = {c["id"] for c in (await platform.gateway.get(CASES, headers=headers)).json()["items"]}
    reviewer = await platform.gateway.get(
        CASES, headers=await platform.auth("reviewer@demo.example")
    )
    new_cases = {c["id"] for c in reviewer.json()["items"]} - before

    assert new_cases, "a reviewer sees the new case"
    assert not (after & new_cases)


async def test_the_merged_openapi_declares_each_operations_scopes(platform: Platform) -> None:
    document = (await platform.gateway.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    paths = document["paths"]

    assert set(schemes) >= {"OAuth2", "BearerJWT", "ReporterToken"}
    assert schemes["OAuth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/auth/token"
    assert "cases:content" in schemes["OAuth2"]["flows"]["password"]["scopes"]
    assert {"OAuth2": ["cases:read"]} in paths["/cases/v1/cases"]["get"]["security"]
    assert {"OAuth2": ["stats:read"]} in paths["/cases/v1/stats"]["get"]["security"]
    assert {"OAuth2": ["people:write"]} in paths[PEOPLE]["post"]["security"]
    assert {"OAuth2": ["webhooks:manage"]} in paths[WEBHOOKS]["post"]["security"]
    assert {"ReporterToken": []} in paths["/cases/v1/reporter/case"]["get"]["security"]
    # Every operation declares its security, except the few that are public by design.
    public = {
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/auth/receipt",
        "/healthz",
        "/readyz",
        "/intake/v1/forms/{org}",
        "/cases/v1/export-keys",
        "/training/v1/xapi/about",
    }
    undeclared = [
        f"{method.upper()} {path}"
        for path, item in paths.items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation and "security" not in operation
    ]
    assert sorted(p.split(" ", 1)[1] for p in undeclared) == sorted(
        p for p in public if p in paths
    ), undeclared


async def test_a_client_token_with_roles_and_no_scope_opens_nothing(platform: Platform) -> None:
    """Clients are granted scopes: a client token carrying an admin role and no scope (as
    tokens were signed before scopes counted) is refused everywhere, never let in by role."""
    admin = await platform.gateway.get(
        f"{PEOPLE}?email={ADMIN}", headers=await platform.auth(ADMIN)
    )
    issuer = platform.apps["gateway"].state.token_issuer
    token = await issuer.sign(
        subject=DEMO_CLIENT_ID,
        kind=PrincipalKind.CLIENT,
        ttl_seconds=300,
        org_id=uuid.UUID(admin.json()["items"][0]["org_id"]),
        roles=["admin"],
        scope="",
    )

    statuses = await refused_elsewhere(platform, bearer(token), set())

    assert set(statuses.values()) == {403}, statuses
