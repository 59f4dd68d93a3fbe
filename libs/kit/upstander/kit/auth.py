"""Token verification against the gateway's JWKS, the caller (`Principal`), access checks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from jwt.algorithms import OKPAlgorithm

from upstander.kit.clock import Clock
from upstander.kit.errors import Forbidden, TokenRevoked, Unauthorized
from upstander.kit.routing import dependants

log = logging.getLogger("upstander.auth")

ALGORITHM = "EdDSA"  # pinned: never taken from the token header
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "typ"]


class PrincipalKind(StrEnum):
    STAFF = "staff"
    CLIENT = "client"
    REPORTER = "reporter"
    SERVICE = "service"


class Role(StrEnum):
    ADMIN = "admin"
    CASE_MANAGER = "case_manager"
    INVESTIGATOR = "investigator"
    REVIEWER = "reviewer"
    TRAINER = "trainer"
    STAFF = "staff"
    HR_INTEGRATION = "hr_integration"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person, an API client, a reporter (one report) or a service."""

    kind: PrincipalKind
    subject: str
    org_id: uuid.UUID | None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    token_id: str | None = None
    report_id: uuid.UUID | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def person_id(self) -> uuid.UUID | None:
        if self.kind != PrincipalKind.STAFF:
            return None
        return uuid.UUID(self.subject)

    @property
    def owner_id(self) -> uuid.UUID | None:
        """The person who registered an API client (its tokens' `owner` claim): the client
        never sees more than they may. None for other callers, or a missing or malformed
        claim (callers treat that as "nobody vouches for it" and fail closed)."""
        if self.kind != PrincipalKind.CLIENT:
            return None
        value = self.claims.get("owner")
        if not isinstance(value, str):
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            return None

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class JWKSCache:
    """The gateway's public keys, fetched once, cached, and refreshed on an unknown `kid`
    (at most once per `min_refresh_seconds`, so garbage `kid`s cannot hammer the gateway)."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        max_age: float = 300.0,
        min_refresh_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self.client = client
        self.max_age = max_age
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.min_refresh_seconds and self._keys:
                return
            response = await self.client.get(self.url, timeout=5.0)
            response.raise_for_status()
            keys: dict[str, Any] = {}
            for jwk in response.json().get("keys", []):
                if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and "kid" in jwk:
                    keys[jwk["kid"]] = OKPAlgorithm.from_jwk(json.dumps(jwk))
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> Any:
        stale = time.monotonic() - self._fetched_at > self.max_age
        if kid not in self._keys or stale:
            try:
                await self._refresh()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks fetch failed: %s", type(exc).__name__)
                if kid not in self._keys:
                    raise Unauthorized("The token's signing key cannot be verified now.") from exc
        if kid not in self._keys:
            raise Unauthorized("The token was signed with an unknown key.")
        return self._keys[kid]


# Clock skew tolerated between the gateway that issues a token and the service that checks it.
LEEWAY_SECONDS = 5
MAX_SUBJECT_LENGTH = 200
MAX_ROLES = 50
MAX_ROLE_LENGTH = 100
MAX_SCOPE_LENGTH = 2000
MAX_TOKEN_ID_LENGTH = 200

_INVALID = "The token is invalid or expired."
_MALFORMED = "The token's claims are malformed."


def _timestamp(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim as seconds, or None when absent. Only JSON numbers count: a string,
    a boolean, or a non-finite or out-of-range number makes the token malformed (401)."""
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(_MALFORMED)
    try:
        seconds = float(value)
    except OverflowError as exc:
        raise Unauthorized(_MALFORMED) from exc
    if not math.isfinite(seconds):
        raise Unauthorized(_MALFORMED)
    return seconds


def decode_token(
    token: str, key: Any, *, audience: str, issuer: str, now: datetime | None = None
) -> dict[str, Any]:
    """Verify signature (EdDSA only), audience, issuer, required claims, and the token's time
    window against `now` — the app's clock, so tests that move time move it for tokens too.

    The window: not expired (`exp`), not used before its `nbf`, and not issued in the future
    (`iat`), each with `LEEWAY_SECONDS` of tolerance; all three must be numbers."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "require": REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(_INVALID) from exc
    if not isinstance(claims, dict):
        raise Unauthorized(_MALFORMED)
    check_window(claims, (now or datetime.now(UTC)).timestamp())
    return claims


def check_window(claims: dict[str, Any], moment: float) -> None:
    """Refuse (401) claims whose time window does not hold `moment` (see `decode_token`)."""
    expires, issued = _timestamp(claims, "exp"), _timestamp(claims, "iat")
    not_before = _timestamp(claims, "nbf")
    if expires is None or issued is None:  # required above; kept for the type checker
        raise Unauthorized(_MALFORMED)
    if expires < issued:
        raise Unauthorized(_MALFORMED)
    if expires + LEEWAY_SECONDS < moment:
        raise Unauthorized(_INVALID)
    if issued - LEEWAY_SECONDS > moment:
        raise Unauthorized(_INVALID)
    if not_before is not None and not_before - LEEWAY_SECONDS > moment:
        raise Unauthorized(_INVALID)


def _optional_uuid(claims: dict[str, Any], name: str) -> uuid.UUID | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unauthorized(_MALFORMED)
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise Unauthorized(_MALFORMED) from exc


def _roles(claims: dict[str, Any]) -> frozenset[str]:
    value = claims.get("roles")
    if value is None:
        return frozenset()
    if (
        not isinstance(value, list)
        or len(value) > MAX_ROLES
        or not all(isinstance(r, str) and 0 < len(r) <= MAX_ROLE_LENGTH for r in value)
    ):
        raise Unauthorized(_MALFORMED)
    return frozenset(value)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    value = claims.get("scope")
    if value is None:
        return frozenset()
    if not isinstance(value, str) or len(value) > MAX_SCOPE_LENGTH:
        raise Unauthorized(_MALFORMED)
    return frozenset(value.split())


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller a verified token names. Every claim a service reads is checked for type and
    shape here, once, so a malformed one is a 401 and never a 500 deep inside a route: a staff
    token's `sub` is the person's UUID, `org` and `report` are UUIDs, `roles` a list of
    strings, `scope` a space-separated string."""
    typ, subject, token_id = claims.get("typ"), claims.get("sub"), claims.get("jti")
    try:
        kind = PrincipalKind(typ) if isinstance(typ, str) else None
    except ValueError:
        kind = None
    if kind is None:
        raise Unauthorized(_MALFORMED)
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
        raise Unauthorized(_MALFORMED)
    if kind == PrincipalKind.STAFF:
        try:
            uuid.UUID(subject)
        except ValueError as exc:
            raise Unauthorized(_MALFORMED) from exc
    if token_id is not None and (
        not isinstance(token_id, str) or len(token_id) > MAX_TOKEN_ID_LENGTH
    ):
        raise Unauthorized(_MALFORMED)
    return Principal(
        kind=kind,
        subject=subject,
        org_id=_optional_uuid(claims, "org"),
        roles=_roles(claims),
        scopes=_scopes(claims),
        token_id=token_id,
        report_id=_optional_uuid(claims, "report"),
        claims=claims,
    )


class KeySource(Protocol):
    async def key(self, kid: str) -> Any: ...


# Whether a verified staff or API-client token was revoked since it was signed (its subject
# deactivated, or their access changed): see `upstander.kit.revocation`.
RevocationCheck = Callable[[Principal], Awaitable[bool]]


# Verified tokens a verifier remembers (by a hash of the token), so that a caller's steady
# traffic costs one signature check per token rather than one per request.
VERIFIED_CACHE_SIZE = 4096


class TokenVerifier:
    """Verify a bearer token: its signature (the gateway's key named by `kid`), audience,
    issuer, claims and time window, then the revocation check.

    A token that verified is remembered (a SHA-256 of it, with the key that verified it and
    the caller it names; at most `cache_size`, the oldest dropped first). Using it again skips
    the signature and the parsing only: the key must still be the one the JWKS serves for its
    `kid`, the time window is checked against the clock again, and the revocation check runs
    every time, as for a new token."""

    def __init__(
        self,
        jwks: KeySource,
        *,
        audience: str,
        issuer: str,
        clock: Clock | None = None,
        revocation_check: RevocationCheck | None = None,
        cache_size: int = VERIFIED_CACHE_SIZE,
    ) -> None:
        self.jwks = jwks
        self.audience = audience
        self.issuer = issuer
        self.clock = clock or Clock()
        self.revocation_check = revocation_check
        self.cache_size = cache_size
        self._verified: dict[bytes, tuple[str, Any, Principal]] = {}

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            known_kid, known_key, known = cached
            try:
                current = await self.jwks.key(known_kid)
            except Unauthorized:
                self._verified.pop(digest, None)  # its key left the JWKS
                raise
            if current is known_key:
                check_window(known.claims, self.clock.now().timestamp())
                return await self._unrevoked(known)
            self._verified.pop(digest, None)  # the key was rotated or refreshed: verify afresh
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The token's algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("The token names no signing key.")
        key = await self.jwks.key(kid)
        claims = decode_token(
            token, key, audience=self.audience, issuer=self.issuer, now=self.clock.now()
        )
        principal = principal_from_claims(claims)
        if self.cache_size > 0:
            while len(self._verified) >= self.cache_size:
                del self._verified[next(iter(self._verified))]
            self._verified[digest] = (kid, key, principal)
        return await self._unrevoked(principal)

    async def _unrevoked(self, principal: Principal) -> Principal:
        if (
            self.revocation_check is not None
            and principal.kind in (PrincipalKind.STAFF, PrincipalKind.CLIENT)
            and await self.revocation_check(principal)
        ):
            raise TokenRevoked()
        return principal


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    """The caller's verified token, or None without one. A route that calls it itself (rather
    than through a dependency) must do so before it uses the request's session: the revocation
    check reads the access ledger with a pool connection of its own, and as many requests as
    the pool holds, each holding one connection and waiting for another, would wait for good
    (tests/intake/test_reports.py, the pool test)."""
    token = bearer_token(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(token)
    request.state.principal = principal
    return principal


async def current_principal(request: Request) -> Principal:
    principal = await optional_principal(request)
    if principal is None:
        raise Unauthorized()
    return principal


# Set on the dependency `upstander.kit.scopes.require_scope` builds, so that the scopes a
# route declares can be found from the route itself, whatever order its dependencies run in.
SCOPE_GATE_MARKER = "__upstander_scope_gate__"
_DECLARED: dict[int, tuple[Any, frozenset[str]]] = {}


def declared_scopes(route: Any) -> frozenset[str]:
    """The scopes a route declares (every `require_scope` among its dependencies, at any
    depth); empty for a route that declares none, or no route."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return frozenset()
    cached = _DECLARED.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    found: set[str] = set()
    for node in dependants(dependant):
        if getattr(node.call, SCOPE_GATE_MARKER, False):
            found.update(node.parent_oauth_scopes or [])
            found.update(node.own_oauth_scopes or [])
    _DECLARED[id(route)] = (route, frozenset(found))
    return frozenset(found)


def insufficient_scope(missing: list[str], detail: str) -> Forbidden:
    """403 with RFC 6750's `insufficient_scope` challenge naming the scopes wanted."""
    wanted = " ".join(missing)
    return Forbidden(
        detail,
        headers={
            "WWW-Authenticate": f'Bearer realm="upstander", error="insufficient_scope", '
            f'scope="{wanted}"'
        },
        error="insufficient_scope",
        missing_scopes=missing,
    )


def check_client_scopes(request: Request, principal: Principal) -> None:
    """An API client passes a route by scope alone: the route must declare scopes
    (`upstander.kit.scopes.require_scope`) and the client's token must hold all of them.
    A route that declares none is closed to clients (fail closed)."""
    declared = declared_scopes(request.scope.get("route"))
    if not declared:
        raise Forbidden("This endpoint is not open to API clients.")
    missing = sorted(declared - principal.scopes)
    if missing:
        raise insufficient_scope(missing, "The client's token lacks a scope this endpoint needs.")


async def staff_or_client(
    request: Request, principal: Principal = Depends(current_principal)
) -> Principal:
    """A person or an API client of an org; reporters and bare service tokens are refused. An
    API client must hold the scopes the route declares (`check_client_scopes`)."""
    if (
        principal.kind not in (PrincipalKind.STAFF, PrincipalKind.CLIENT)
        or principal.org_id is None
    ):
        raise Forbidden("This endpoint is for staff and API clients.")
    if principal.kind == PrincipalKind.CLIENT:
        check_client_scopes(request, principal)
    return principal


def require_roles(*roles: str) -> Any:
    """Dependency: a person holding one of `roles`, or an API client holding the scopes the
    route declares (clients are granted scopes, not roles: `staff_or_client` checks them)."""

    async def dependency(principal: Principal = Depends(staff_or_client)) -> Principal:
        if principal.kind == PrincipalKind.CLIENT:
            return principal
        if not principal.has_role(*roles):
            raise Forbidden("Your role does not allow this.")
        return principal

    return Depends(dependency)


def require_scopes(*scopes: str) -> Any:
    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        missing = [s for s in scopes if not principal.has_scope(s)]
        if missing:
            raise Forbidden("The token lacks a required scope.", missing_scopes=missing)
        return principal

    return Depends(dependency)


async def reporter(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.kind != PrincipalKind.REPORTER or principal.report_id is None:
        raise Forbidden("This endpoint takes a reporter token from /auth/receipt.")
    return principal


async def service_caller(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.kind != PrincipalKind.SERVICE:
        raise Forbidden("This endpoint is for the platform's services.")
    return principal
