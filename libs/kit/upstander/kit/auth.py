"""Token verification against the gateway's JWKS, the caller (`Principal`), access checks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from jwt.algorithms import OKPAlgorithm

from upstander.kit.clock import Clock
from upstander.kit.errors import Forbidden, Unauthorized

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


LEEWAY_SECONDS = 5


def decode_token(
    token: str, key: Any, *, audience: str, issuer: str, now: datetime | None = None
) -> dict[str, Any]:
    """Verify signature (EdDSA only), audience, issuer, required claims, and the token's time
    window against `now` — the app's clock, so tests that move time move it for tokens too."""
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
        raise Unauthorized("The token is invalid or expired.") from exc
    moment = (now or datetime.now(UTC)).timestamp()
    try:
        expires, issued = float(claims["exp"]), float(claims["iat"])
        not_before = float(claims.get("nbf", issued))
    except (TypeError, ValueError) as exc:
        raise Unauthorized("The token is invalid or expired.") from exc
    if expires + LEEWAY_SECONDS < moment or min(issued, not_before) - LEEWAY_SECONDS > moment:
        raise Unauthorized("The token is invalid or expired.")
    return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        kind = PrincipalKind(claims["typ"])
        org = claims.get("org")
        report = claims.get("report")
        return Principal(
            kind=kind,
            subject=str(claims["sub"]),
            org_id=uuid.UUID(org) if org else None,
            roles=frozenset(claims.get("roles") or ()),
            scopes=frozenset(str(claims.get("scope") or "").split()),
            token_id=claims.get("jti"),
            report_id=uuid.UUID(report) if report else None,
            claims=claims,
        )
    except (KeyError, ValueError) as exc:
        raise Unauthorized("The token's claims are malformed.") from exc


class KeySource(Protocol):
    async def key(self, kid: str) -> Any: ...


class TokenVerifier:
    def __init__(
        self,
        jwks: KeySource,
        *,
        audience: str,
        issuer: str,
        clock: Clock | None = None,
    ) -> None:
        self.jwks = jwks
        self.audience = audience
        self.issuer = issuer
        self.clock = clock or Clock()

    async def verify(self, token: str) -> Principal:
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
        return principal_from_claims(claims)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
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


async def staff_or_client(principal: Principal = Depends(current_principal)) -> Principal:
    """A person or an API client of an org; reporters and bare service tokens are refused."""
    if (
        principal.kind not in (PrincipalKind.STAFF, PrincipalKind.CLIENT)
        or principal.org_id is None
    ):
        raise Forbidden("This endpoint is for staff and API clients.")
    return principal


def require_roles(*roles: str) -> Any:
    """Dependency: a person or client holding one of `roles` (API clients via scopes too)."""

    async def dependency(principal: Principal = Depends(staff_or_client)) -> Principal:
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
