"""Through the gateway, end to end: an identity provider provisions a small organisation over
SCIM (Okta's and Entra's request shapes) with a manager line, and every service's directory
projection holds it; deprovisioning over SCIM stops the person's tokens at once (refresh and
access, at the gateway, and at every service once the events arrive) and takes them off open
cases; a manager change over SCIM hides a case from the respondent's new manager."""

from __future__ import annotations

import uuid
from typing import Any

from harness import Platform
from sqlalchemy import select

SCIM = "/scim/v2"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UPSTANDER = "urn:upstander:params:scim:schemas:extension:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PASSWORD = "a-long-password-1"
REVOKED = "https://upstander.dev/problems/token-revoked"


async def _client(platform: Platform, scopes: list[str]) -> dict[str, str]:
    return await platform.client_headers(scopes, f"IdP {uuid.uuid4().hex[:6]}")


def _email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@demo.example"


async def _scim_create(platform: Platform, scim: dict[str, str], body: dict[str, Any]) -> str:
    response = await platform.gateway.post(
        f"{SCIM}/Users", json=body, headers={**scim, "content-type": "application/scim+json"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _scim_patch(
    platform: Platform, scim: dict[str, str], user_id: str, operations: list[dict[str, Any]]
) -> None:
    response = await platform.gateway.patch(
        f"{SCIM}/Users/{user_id}",
        json={"schemas": [PATCH_OP], "Operations": operations},
        headers={**scim, "content-type": "application/scim+json"},
    )
    assert response.status_code == 200, response.text


async def _person_with_password(platform: Platform, roles: list[str]) -> tuple[str, str]:
    email = _email("handler")
    response = await platform.gateway.post(
        "/identity/v1/people",
        json={"email": email, "name": "Robin Roe", "roles": roles, "password": PASSWORD},
        headers=await platform.auth("admin@demo.example"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), email


async def _sign_in(platform: Platform, email: str) -> dict[str, Any]:
    response = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD, "org": "demo"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _file_case(platform: Platform, respondent: str) -> str:
    filed = await platform.gateway.post(
        "/intake/v1/reports",
        json={
            "org": "demo",
            "mode": "anonymous",
            "description": "He kept commenting on my appearance after I asked him to stop.",
            "categories": ["sexual_harassment"],
            "people_involved": [{"person_id": respondent, "role": "subject"}],
        },
    )
    assert filed.status_code == 201, filed.text
    await platform.drain()
    manager = await platform.auth("case_manager@demo.example")
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
    [case] = [c for c in listing.json()["items"] if c["report_id"] == filed.json()["report_id"]]
    return str(case["id"])


async def test_an_identity_provider_provisions_a_manager_line_that_reaches_every_service(
    platform: Platform,
) -> None:
    scim = await _client(platform, ["scim"])
    lead = await _scim_create(
        platform,
        scim,
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": _email("lead"),
            "name": {"givenName": "Lea", "familyName": "Lead"},
            "emails": [{"primary": True, "value": "ignored@demo.example", "type": "work"}],
            "displayName": "Lea Lead",
            "externalId": "00u" + uuid.uuid4().hex[:17],
            "active": True,
            UPSTANDER: {"roles": ["case_manager"], "isLeadership": True},
        },
    )
    report = await _scim_create(
        platform,
        scim,
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "externalId": str(uuid.uuid4()),
            "userName": _email("report"),
            "active": True,
            "name": {"formatted": "Rey Report", "familyName": "Report", "givenName": "Rey"},
            ENTERPRISE: {"department": "Field", "manager": {"value": lead}},
        },
    )
    await platform.drain()

    from upstander.cases.models import Person as CasesPerson
    from upstander.training.models import Person as TrainingPerson

    for service, table in (("cases", CasesPerson), ("training", TrainingPerson)):
        async with platform.apps[service].state.sessionmaker() as session:
            rows = await session.execute(
                select(table.id, table.manager_id, table.is_leadership).where(
                    table.id.in_([uuid.UUID(lead), uuid.UUID(report)])
                )
            )
            found = {str(row.id): (row.manager_id, row.is_leadership) for row in rows}
        assert found == {lead: (None, True), report: (uuid.UUID(lead), False)}, service


async def test_deprovisioning_over_scim_stops_tokens_and_takes_the_person_off_open_cases(
    platform: Platform,
) -> None:
    scim = await _client(platform, ["scim"])
    person_id, email = await _person_with_password(platform, ["investigator"])
    respondent = await _scim_create(platform, scim, {"userName": _email("resp"), "active": True})
    await platform.drain()
    case_id = await _file_case(platform, respondent)
    manager = await platform.auth("case_manager@demo.example")
    assigned = await platform.gateway.post(
        f"/cases/v1/cases/{case_id}/assignments",
        json={"person_id": person_id, "role": "investigator"},
        headers=manager,
    )
    assert assigned.status_code == 201, assigned.text
    signed_in = await _sign_in(platform, email)
    theirs = {"authorization": f"Bearer {signed_in['access_token']}"}
    assert (
        await platform.gateway.get(f"/cases/v1/cases/{case_id}", headers=theirs)
    ).status_code == 200

    # Okta's deactivation: a path-less replace of `active`.
    await _scim_patch(platform, scim, person_id, [{"op": "replace", "value": {"active": False}}])

    # At once, before any event is delivered: the gateway refuses both tokens.
    refreshed = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]},
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    own = await platform.gateway.get("/identity/v1/people", headers=theirs)
    assert own.status_code == 401 and own.json()["type"] == REVOKED

    await platform.drain()
    case = await platform.gateway.get(f"/cases/v1/cases/{case_id}", headers=theirs)
    assert case.status_code == 401 and case.json()["type"] == REVOKED
    assignments = await platform.gateway.get(
        f"/cases/v1/cases/{case_id}/assignments", headers=manager
    )
    assert person_id not in {a["person_id"] for a in assignments.json()["items"]}
    trail = await platform.gateway.get(
        "/cases/v1/audit",
        params={"case_id": case_id, "limit": 200},
        headers=await platform.auth("admin@demo.example"),
    )
    assert trail.status_code == 200, trail.text
    actions = [
        (entry["action"], entry.get("detail", {}).get("person_id"))
        for entry in trail.json()["items"]
    ]
    assert ("assignment.released", person_id) in actions


async def test_a_manager_change_over_scim_hides_the_case_from_the_new_manager(
    platform: Platform,
) -> None:
    scim = await _client(platform, ["scim"])
    new_manager_id, new_manager_email = await _person_with_password(platform, ["case_manager"])
    respondent = await _scim_create(platform, scim, {"userName": _email("resp"), "active": True})
    await platform.drain()
    case_id = await _file_case(platform, respondent)
    theirs = {
        "authorization": f"Bearer {(await _sign_in(platform, new_manager_email))['access_token']}"
    }
    url = f"/cases/v1/cases/{case_id}"
    assert (await platform.gateway.get(url, headers=theirs)).status_code == 200

    # Entra's manager change: an Add on the enterprise extension's manager with a bare id.
    await _scim_patch(
        platform,
        scim,
        respondent,
        [{"op": "Add", "path": f"{ENTERPRISE}:manager", "value": new_manager_id}],
    )
    await platform.drain()
    assert (await platform.gateway.get(url, headers=theirs)).status_code == 404
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=theirs)
    assert case_id not in {c["id"] for c in listing.json()["items"]}
    feed = await platform.gateway.get("/cases/v1/changes", headers=theirs)
    assert case_id not in feed.text


async def test_scim_errors_come_through_the_gateway_as_scim(platform: Platform) -> None:
    response = await platform.gateway.get(f"{SCIM}/Users", headers={"authorization": "Bearer x"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/scim+json")
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
