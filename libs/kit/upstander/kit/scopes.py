"""The scope catalogue: the unit of authority for API clients, what each role amounts to in
scopes, and the route dependencies that declare (and enforce) what a route needs.

- An API client holds scopes, granted by an admin (never more than the admin holds) and
  signed into its tokens' `scope` claim; on every route it passes by scope alone.
- A person passes by role, as always (`require_roles` and the per-case rules). Their roles
  map to scopes (`ROLE_SCOPES`): that bounds what they may grant a client and what a token
  of theirs may be narrowed to. A token they asked to narrow (`scope=` at `/auth/token`)
  carries only those scopes, and a route needing one of their other scopes refuses it.
- Every route declares its scopes with `require_scope(...)` (or `require_person()` for a
  person's own things: their inbox, their acknowledgments), which also documents them in the
  OpenAPI document (`components.securitySchemes` and per-operation `security`).

Case-restriction rules and everything else a service checks still apply on top: a scope
opens a kind of route, never a particular case (see docs/auth.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from fastapi import Depends, Request, Security
from fastapi.openapi.models import (
    OAuthFlowAuthorizationCode,
    OAuthFlowClientCredentials,
    OAuthFlowPassword,
    OAuthFlows,
)
from fastapi.security import HTTPBearer, OAuth2, SecurityScopes

from upstander.kit.auth import (
    SCOPE_GATE_MARKER,
    Principal,
    PrincipalKind,
    Role,
    check_client_scopes,
    current_principal,
    insufficient_scope,
    staff_or_client,
)
from upstander.kit.errors import Forbidden
from upstander.kit.routing import documentation_only

TOKEN_URL = "/auth/token"
AUTHORIZATION_URL = "/auth/authorize"


class Scope(StrEnum):
    """Every scope an organisation's API client may be granted (docs/auth.md)."""

    INTAKE_WRITE = "intake:write"
    FORMS_WRITE = "forms:write"
    CASES_READ = "cases:read"
    CASES_CONTENT = "cases:content"
    CASES_WRITE = "cases:write"
    CASES_EXPORT = "cases:export"
    CASES_ADMIN = "cases:admin"
    AUDIT_READ = "audit:read"
    STATS_READ = "stats:read"
    PEOPLE_READ = "people:read"
    PEOPLE_WRITE = "people:write"
    CLIENTS_MANAGE = "clients:manage"
    ORG_READ = "org:read"
    ORG_WRITE = "org:write"
    TRAINING_READ = "training:read"
    TRAINING_WRITE = "training:write"
    XAPI_READ = "xapi:read"
    XAPI_WRITE = "xapi:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    NOTIFICATIONS_MANAGE = "notifications:manage"
    EVENTS_MANAGE = "events:manage"
    SCIM = "scim"


CATALOGUE: dict[str, str] = {
    Scope.INTAKE_WRITE: "Submit reports (a person's token: identified reports too).",
    Scope.FORMS_WRITE: "Change the organisation's reporting form.",
    Scope.CASES_READ: "Case metadata: the case list, status, deadlines, assignments, "
    "transitions, measures, links.",
    Scope.CASES_CONTENT: "What was reported and the investigation file: report, attachments, "
    "reporter identity, messages, notes, interviews, evidence, allegations, timeline.",
    Scope.CASES_WRITE: "Change cases: transitions, assignments, findings, measures, and add "
    "to the file (with cases:content for content).",
    Scope.CASES_EXPORT: "Export a case file as a signed ZIP; verify bundles.",
    Scope.CASES_ADMIN: "The organisation's case settings: deadlines, legal holds.",
    Scope.AUDIT_READ: "Read and verify the audit trail.",
    Scope.STATS_READ: "Case statistics (suppressed below 5 cases).",
    Scope.PEOPLE_READ: "Read the staff directory.",
    Scope.PEOPLE_WRITE: "Add, change and deactivate people.",
    Scope.CLIENTS_MANAGE: "Register and deactivate API clients (never beyond its own scopes).",
    Scope.ORG_READ: "Read the organisation's settings.",
    Scope.ORG_WRITE: "Change the organisation's settings.",
    Scope.TRAINING_READ: "Read the organisation's training records and compliance.",
    Scope.TRAINING_WRITE: "Manage courses, requirements, policies and completions.",
    Scope.XAPI_READ: "Read xAPI statements (LRS).",
    Scope.XAPI_WRITE: "Store xAPI statements (LRS).",
    Scope.WEBHOOKS_MANAGE: "Outside webhook subscribers and their deliveries.",
    Scope.NOTIFICATIONS_MANAGE: "Notification rules and the delivery log.",
    Scope.EVENTS_MANAGE: "Undelivered events of each service (dead letters, requeue).",
    Scope.SCIM: "SCIM 2.0 provisioning of people and groups.",
}

# The platform operators' scopes: above every organisation, so outside the catalogue an
# organisation's admin holds and grants. Only the operator client configured in the gateway's
# settings (`UPSTANDER_OPERATOR_CLIENT_*`, docs/auth.md "Platform operators") is issued them.
OPERATOR_SCOPES: dict[str, str] = {
    "platform:orgs": "Platform operators: create, list, suspend and reactivate organisations "
    "and invite their first admin. Never held by an organisation's people or clients.",
}
PLATFORM_ORGS = "platform:orgs"

# What the platform's own tokens carry; never granted to an organisation's client.
PLATFORM_SCOPES = frozenset({"events:publish", "receipts:verify", "reporter", *OPERATOR_SCOPES})

# Scopes every person holds whatever their roles: anyone may report.
PERSON_SCOPES: frozenset[str] = frozenset({Scope.INTAKE_WRITE})

_HANDLER = frozenset({Scope.CASES_READ, Scope.CASES_CONTENT, Scope.CASES_WRITE, Scope.PEOPLE_READ})

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(CATALOGUE),
    Role.CASE_MANAGER: _HANDLER | {Scope.CASES_EXPORT, Scope.STATS_READ},
    Role.INVESTIGATOR: _HANDLER,
    Role.REVIEWER: _HANDLER | {Scope.CASES_EXPORT},
    Role.TRAINER: frozenset(
        {
            Scope.TRAINING_READ,
            Scope.TRAINING_WRITE,
            Scope.XAPI_READ,
            Scope.XAPI_WRITE,
            Scope.PEOPLE_READ,
        }
    ),
    Role.STAFF: frozenset(),
    Role.HR_INTEGRATION: frozenset({Scope.PEOPLE_READ}),
    Role.AUDITOR: frozenset(
        {
            Scope.AUDIT_READ,
            Scope.STATS_READ,
            Scope.PEOPLE_READ,
            Scope.TRAINING_READ,
            Scope.XAPI_READ,
        }
    ),
}


def scopes_for_roles(roles: Iterable[str]) -> frozenset[str]:
    """The scopes a person holding `roles` holds (unknown roles add nothing)."""
    if isinstance(roles, frozenset):
        return _scopes_for_role_set(roles)  # a principal's: once per set of roles
    return _scopes_for(roles)


@functools.lru_cache(maxsize=256)
def _scopes_for_role_set(roles: frozenset[str]) -> frozenset[str]:
    return _scopes_for(roles)


def _scopes_for(roles: Iterable[str]) -> frozenset[str]:
    held: set[str] = set(PERSON_SCOPES)
    for role in roles:
        held |= ROLE_SCOPES.get(str(role), frozenset())
    return frozenset(str(scope) for scope in held)


def unknown_scopes(names: Iterable[str]) -> list[str]:
    """The names that are not in the catalogue, in order, once each."""
    return list(dict.fromkeys(name for name in names if name not in CATALOGUE))


def held_scopes(principal: Principal) -> frozenset[str]:
    """What a caller may use and grant: a client its token's scopes; a person their roles'
    scopes, within what their token was narrowed to; the platform (bootstrap, provisioning)
    everything."""
    if principal.kind == PrincipalKind.CLIENT:
        return frozenset(s for s in principal.scopes if s in CATALOGUE)
    if principal.kind == PrincipalKind.STAFF:
        by_role = scopes_for_roles(principal.roles)
        token = frozenset(s for s in principal.scopes if s in CATALOGUE)
        return by_role & token if token else by_role
    if principal.kind == PrincipalKind.SERVICE:
        return frozenset(CATALOGUE)
    return frozenset()


def allows(principal: Principal, *scopes: str) -> bool:
    """Whether the caller may use `scopes`, by the same rule as `require_scope`: a client by
    its scopes; a person unless their token was narrowed away from one their roles hold.
    For code paths that are not a route's dependency (a report's `identified` mode)."""
    if principal.kind == PrincipalKind.CLIENT:
        return set(scopes) <= principal.scopes
    if principal.kind == PrincipalKind.STAFF:
        return not narrowed_away(principal, scopes)
    return False


def narrowed_away(principal: Principal, scopes: Iterable[str]) -> list[str]:
    """Of `scopes`, those a person's roles hold but their narrowed token does not. A token
    without a `scope` claim (issued before narrowing existed) is not narrowed."""
    if not principal.scopes:
        return []
    by_role = scopes_for_roles(principal.roles)
    return sorted(s for s in scopes if s in by_role and s not in principal.scopes)


# ----------------------------------------------------------------------------- documentation

OAUTH2 = documentation_only(
    OAuth2(
        flows=OAuthFlows(
            clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=CATALOGUE),
            authorizationCode=OAuthFlowAuthorizationCode(
                authorizationUrl=AUTHORIZATION_URL,
                tokenUrl=TOKEN_URL,
                refreshUrl=TOKEN_URL,
                scopes=CATALOGUE,
            ),
            password=OAuthFlowPassword(tokenUrl=TOKEN_URL, scopes=CATALOGUE),
        ),
        scheme_name="OAuth2",
        description=(
            "API clients: `client_credentials` (a client holds the scopes an admin granted it). "
            "People: `authorization_code` with PKCE (S256) for browser and mobile apps, signing in "
            "with a password or the organisation's SSO; `password` only for clients allowed it "
            "(first-party tools). A person's roles decide, the client's scopes bound, and `scope=` "
            "narrows the token. See docs/auth.md."
        ),
        auto_error=False,
    )
)
BEARER = documentation_only(
    HTTPBearer(
        scheme_name="BearerJWT",
        bearerFormat="JWT",
        description="An access token from `POST /auth/token` (EdDSA JWT, keys at "
        "`/.well-known/jwks.json`), with the operation's scopes.",
        auto_error=False,
    )
)
REPORTER = documentation_only(
    HTTPBearer(
        scheme_name="ReporterToken",
        bearerFormat="JWT",
        description="A reporter's token from `POST /auth/receipt`: one report, nothing else.",
        auto_error=False,
    )
)


# ----------------------------------------------------------------------------- dependencies


async def _scope_gate(
    request: Request,
    security_scopes: SecurityScopes,
    principal: Principal = Depends(staff_or_client),
    _oauth2: Any = Depends(OAUTH2),
    _bearer: Any = Depends(BEARER),
) -> Principal:
    # `staff_or_client` already held a client to every scope the route declares; a person's
    # roles are checked by the route's role dependency. Left: a person's narrowed token.
    if principal.kind == PrincipalKind.CLIENT:
        check_client_scopes(request, principal)
    missing = narrowed_away(principal, security_scopes.scopes)
    if missing:
        raise insufficient_scope(missing, "This token was narrowed to other scopes.")
    return principal


setattr(_scope_gate, SCOPE_GATE_MARKER, True)


def require_scope(*scopes: str) -> Any:
    """Declare and enforce the scopes a route needs (all of them), for `dependencies=[...]`
    or as a parameter's default (it gives the `Principal`). Staff and API clients only."""
    unknown = unknown_scopes(str(s) for s in scopes)
    if not scopes or unknown:
        raise ValueError(f"require_scope needs catalogue scopes, got {unknown or 'none'}")
    return Security(_scope_gate, scopes=[str(scope) for scope in scopes])


async def _person_gate(
    principal: Principal = Depends(current_principal),
    _oauth2: Any = Depends(OAUTH2),
    _bearer: Any = Depends(BEARER),
) -> Principal:
    if principal.kind != PrincipalKind.STAFF or principal.org_id is None:
        raise Forbidden("This is a person's own; API clients act for nobody.")
    return principal


def require_person() -> Any:
    """Declare a route for a person's own things (their inbox, their acknowledgment): any
    signed-in person of an organisation, whatever their scopes; never an API client."""
    return Security(_person_gate)


async def _reporter_doc(_reporter: Any = Depends(REPORTER)) -> None:
    """Documents the reporter's token; the route's `reporter` dependency checks it."""


def reporter_token() -> Any:
    """Declare (for the OpenAPI document) a route taking a reporter's token."""
    return Depends(_reporter_doc)
