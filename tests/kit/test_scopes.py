"""The kit's scope rules on a bare app: a client passes by its scopes alone (a route that
declares none is closed to it), a person by role unless their token was narrowed, and a
route's declaration is its OpenAPI `security`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from upstander.kit.auth import (
    Principal,
    PrincipalKind,
    current_principal,
    require_roles,
    staff_or_client,
)
from upstander.kit.errors import install_problem_handlers
from upstander.kit.scopes import (
    CATALOGUE,
    Scope,
    held_scopes,
    require_person,
    require_scope,
    scopes_for_roles,
)

ORG = uuid.uuid4()


def principal(kind: PrincipalKind, roles: Iterable[str] = (), scope: str = "") -> Principal:
    subject = str(uuid.uuid4()) if kind == PrincipalKind.STAFF else "cl_test"
    return Principal(
        kind=kind,
        subject=subject,
        org_id=ORG,
        roles=frozenset(roles),
        scopes=frozenset(scope.split()),
    )


def build(caller: Principal) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/cases", dependencies=[require_scope(Scope.CASES_READ)])
    async def cases(who: Principal = require_roles("case_manager")) -> dict[str, str]:
        return {"kind": str(who.kind)}

    @app.get("/undeclared")
    async def undeclared(who: Any = require_roles("case_manager")) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/open-to-all-staff", dependencies=[require_scope(Scope.TRAINING_READ)])
    async def training(who: Any = Depends(staff_or_client)) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/inbox", dependencies=[require_person()])
    async def inbox() -> dict[str, str]:
        return {"ok": "yes"}

    app.dependency_overrides[current_principal] = lambda: caller
    return app


async def status(caller: Principal, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(build(caller))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_a_client_with_the_scope_passes_a_role_checked_route() -> None:
    response = await status(principal(PrincipalKind.CLIENT, scope="cases:read"), "/cases")

    assert response.status_code == 200, response.text


async def test_a_client_without_the_scope_gets_an_insufficient_scope_403() -> None:
    response = await status(principal(PrincipalKind.CLIENT, scope="stats:read"), "/cases")

    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["cases:read"]
    assert 'error="insufficient_scope", scope="cases:read"' in response.headers["www-authenticate"]


async def test_a_clients_roles_open_nothing() -> None:
    response = await status(principal(PrincipalKind.CLIENT, roles={"case_manager"}), "/cases")

    assert response.status_code == 403


async def test_a_route_that_declares_no_scope_is_closed_to_clients() -> None:
    every = " ".join(CATALOGUE)
    response = await status(principal(PrincipalKind.CLIENT, scope=every), "/undeclared")

    assert response.status_code == 403
    assert "not open to API clients" in response.json()["detail"]


async def test_a_person_passes_by_role_and_not_otherwise() -> None:
    manager = await status(principal(PrincipalKind.STAFF, roles={"case_manager"}), "/cases")
    trainer = await status(principal(PrincipalKind.STAFF, roles={"trainer"}), "/cases")

    assert manager.status_code == 200
    assert trainer.status_code == 403


async def test_a_narrowed_token_needs_the_scope_even_with_the_role() -> None:
    narrowed = principal(PrincipalKind.STAFF, roles={"case_manager"}, scope="intake:write")
    full = principal(
        PrincipalKind.STAFF,
        roles={"case_manager"},
        scope=" ".join(scopes_for_roles(["case_manager"])),
    )

    assert (await status(narrowed, "/cases")).status_code == 403
    assert (await status(full, "/cases")).status_code == 200


async def test_a_scope_outside_a_persons_roles_does_not_stop_them_where_their_roles_allow() -> None:
    # Any person reads training records (their own): a plain staff member's token, narrowed or
    # not, is not refused for lacking training:read, which their roles never held.
    staff = principal(PrincipalKind.STAFF, roles={"staff"}, scope="intake:write")

    assert (await status(staff, "/open-to-all-staff")).status_code == 200


async def test_a_persons_own_route_refuses_every_client() -> None:
    every = " ".join(CATALOGUE)

    assert (await status(principal(PrincipalKind.CLIENT, scope=every), "/inbox")).status_code == 403
    assert (
        await status(principal(PrincipalKind.STAFF, roles={"staff"}), "/inbox")
    ).status_code == 200


def test_the_declaration_is_the_operations_security() -> None:
    document = build(principal(PrincipalKind.STAFF)).openapi()
    cases = document["paths"]["/cases"]["get"]["security"]

    assert cases == [{"OAuth2": ["cases:read"]}, {"BearerJWT": ["cases:read"]}]
    assert "security" not in document["paths"]["/undeclared"]["get"]
    assert set(document["components"]["securitySchemes"]["OAuth2"]["flows"]) == {
        "clientCredentials",
        "authorizationCode",
        "password",
    }


def test_only_catalogue_scopes_can_be_declared() -> None:
    with pytest.raises(ValueError):
        require_scope("identity:write")


def test_what_a_caller_may_grant() -> None:
    admin = principal(PrincipalKind.STAFF, roles={"admin"})
    narrowed_admin = principal(PrincipalKind.STAFF, roles={"admin"}, scope="people:read")
    client = principal(PrincipalKind.CLIENT, scope="people:read made:up")

    assert held_scopes(admin) == frozenset(CATALOGUE)
    assert held_scopes(narrowed_admin) == {"people:read"}
    assert held_scopes(client) == {"people:read"}
