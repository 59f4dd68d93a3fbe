"""Ending tokens before they expire, and telling resource servers whether one is alive:
revocation (RFC 7009), introspection (RFC 7662), logout, and the gateway's check that refuses
a revoked access token on every request it serves or proxies.

- A refresh token is revoked with its whole family (the sign-in): every refresh token rotated
  from it, and every access token of that sign-in (they carry its id as `sid`).
- An access token is an EdDSA JWT that cannot be recalled; its `jti` is recorded as revoked
  until it expires (`revoked_tokens`), and so is `sid:<family>` when a sign-in ends. The
  gateway refuses such a token (401 `token-revoked`) before routing or proxying the request:
  one indexed read per token, cached for `access_cache_seconds`, a revoked answer for good.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Scope

from upstander.gateway.auth.oauth import OAuthError
from upstander.gateway.auth.tokens import (
    SESSION_CLAIM,
    SESSION_PREFIX,
    hash_refresh_token,
    record_revoked,
    revoke_family,
)
from upstander.gateway.models import ApiClient, Org, Person, RefreshToken, RevokedToken
from upstander.kit.auth import Principal, PrincipalKind, TokenVerifier
from upstander.kit.clock import Clock
from upstander.kit.edge import Answer, EdgeMiddleware, Exchange, edge_of
from upstander.kit.errors import PROBLEM_BASE, PROBLEM_JSON, Unauthorized
from upstander.kit.scopes import scopes_for_roles

log = logging.getLogger("upstander.gateway.sessions")

# ----------------------------------------------------------------------------- the record


class RevokedTokens:
    """Which access tokens are revoked: `revoked_tokens` behind a small cache. One per app,
    `app.state.revoked_tokens`."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        cache_seconds: float = 1.0,
        max_entries: int = 10_000,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        # key -> (monotonic expiry of the answer, revoked?)
        self._cache: dict[str, tuple[float, bool]] = {}

    def cached(self, keys: Iterable[str]) -> bool | None:
        """What the cache alone says: True (one is revoked), False (every key is known and
        none is), or None (one must be read: `any_revoked`)."""
        now = time.monotonic()
        answer: bool | None = False
        for key in keys:
            cached = self._cache.get(key)
            if cached is None or cached[0] <= now:
                answer = None
            elif cached[1]:
                return True
        return answer

    async def any_revoked(self, keys: Iterable[str]) -> bool:
        now = time.monotonic()
        missing: list[str] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                if cached[1]:
                    return True
            else:
                missing.append(key)
        if not missing:
            return False
        async with self.sessionmaker() as session:
            found = set(
                (
                    await session.scalars(
                        select(RevokedToken.jti).where(RevokedToken.jti.in_(missing))
                    )
                ).all()
            )
        for key in missing:
            self.remember(key, key in found, now)
        return bool(found)

    def remember(self, key: str, revoked: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._cache) >= self.max_entries:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
        # A revocation never ends before the token does: keep that answer (it is small).
        self._cache[key] = (float("inf") if revoked else now + self.cache_seconds, revoked)


async def end_sign_in(
    session: AsyncSession, family_id: uuid.UUID, org_id: uuid.UUID | None, clock: Clock
) -> None:
    """Revoke a sign-in: its refresh tokens and its access tokens (`tokens.revoke_family`)."""
    await revoke_family(session, family_id, clock, org_id)


async def prune_revoked(session: AsyncSession, now: datetime) -> int:
    """Delete the entries of tokens that have expired anyway; returns how many."""
    result = await session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


# ----------------------------------------------------------------------------- reading tokens


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT-shaped string, unverified (for picking the row to check, never for
    trusting it); {} for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def revocation_keys(claims: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    jti, sid = claims.get("jti"), claims.get(SESSION_CLAIM)
    if isinstance(jti, str) and 0 < len(jti) <= 200:
        keys.append(jti)
    if isinstance(sid, str) and 0 < len(sid) <= 100:
        keys.append(SESSION_PREFIX + sid)
    return keys


async def _verified(verifier: TokenVerifier, token: str) -> Principal | None:
    """The caller a live access token names (signature, audience, issuer, time window, and the
    directory's revocation check), else None."""
    if len(token) > 8192:
        return None
    try:
        return await verifier.verify(token)
    except Unauthorized:
        return None


def _expiry(principal: Principal) -> datetime:
    exp = principal.claims.get("exp")
    seconds = float(exp) if isinstance(exp, int | float) else time.time()
    return datetime.fromtimestamp(seconds, UTC)


async def _refresh_row(session: AsyncSession, token: str) -> RefreshToken | None:
    if len(token) > 256:
        return None
    row: RefreshToken | None = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
    )
    return row


def _session_id(principal: Principal) -> uuid.UUID | None:
    value = principal.claims.get(SESSION_CLAIM)
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# ----------------------------------------------------------------------------- revocation


@dataclass(frozen=True)
class Revoked:
    """What a revocation ended: keys now refused by the gateway (for its cache)."""

    keys: tuple[str, ...] = ()


async def revoke_access_token(
    session: AsyncSession, principal: Principal, clock: Clock, *, end_session: bool
) -> Revoked:
    keys: list[str] = []
    if principal.token_id:
        await record_revoked(
            session,
            principal.token_id,
            org_id=principal.org_id,
            now=clock.now(),
            expires_at=_expiry(principal),
        )
        keys.append(principal.token_id)
    family = _session_id(principal) if end_session else None
    if family is not None:
        await end_sign_in(session, family, principal.org_id, clock)
        keys.append(SESSION_PREFIX + str(family))
    return Revoked(tuple(keys))


async def revoke(
    session: AsyncSession,
    verifier: TokenVerifier,
    clock: Clock,
    *,
    token: str,
    hint: str | None,
    client: ApiClient | None,
) -> Revoked:
    """RFC 7009: revoke `token` (a refresh token: its family; an access token: it) and answer
    the same whether or not it was valid. An authenticated client may only revoke its own
    client tokens (400 `unauthorized_client` for another client's)."""
    order = ("access_token", "refresh_token")
    if hint == "refresh_token" or not unverified_claims(token):
        order = ("refresh_token", "access_token")
    for kind in order:
        if kind == "refresh_token":
            row = await _refresh_row(session, token)
            if row is not None:
                await end_sign_in(session, row.family_id, row.org_id, clock)
                return Revoked((SESSION_PREFIX + str(row.family_id),))
            continue
        principal = await _verified(verifier, token)
        if principal is None:
            continue
        if (
            client is not None
            and client.kind != "service"
            and principal.kind == PrincipalKind.CLIENT
            and principal.subject != client.client_id
        ):
            raise OAuthError("unauthorized_client", "The token was not issued to this client.")
        if principal.kind == PrincipalKind.SERVICE and (
            client is None or client.client_id != principal.subject
        ):
            # A platform service's token is ended by that service (or left to expire).
            raise OAuthError("unauthorized_client", "The token was not issued to this client.")
        # Revoking one access token ends that token only; logout ends the sign-in.
        return await revoke_access_token(session, principal, clock, end_session=False)
    return Revoked()


async def logout(
    session: AsyncSession,
    verifier: TokenVerifier,
    clock: Clock,
    *,
    access_token: str | None,
    refresh_token: str | None,
) -> Revoked:
    """End a person's sign-in: the refresh token's family and the access token's sign-in
    (`sid`), and the access token itself. Either token is enough; unknown ones change nothing."""
    keys: list[str] = []
    if refresh_token:
        row = await _refresh_row(session, refresh_token)
        if row is not None:
            await end_sign_in(session, row.family_id, row.org_id, clock)
            keys.append(SESSION_PREFIX + str(row.family_id))
    if access_token:
        principal = await _verified(verifier, access_token)
        if principal is not None and principal.kind in (
            PrincipalKind.STAFF,
            PrincipalKind.CLIENT,
        ):
            revoked = await revoke_access_token(session, principal, clock, end_session=True)
            keys.extend(revoked.keys)
    return Revoked(tuple(dict.fromkeys(keys)))


# ----------------------------------------------------------------------------- introspection


INACTIVE: dict[str, Any] = {"active": False}


def _may_see(client: ApiClient, org_id: uuid.UUID | None) -> bool:
    """A platform service introspects any token; an organisation's client only its own
    organisation's (another's reads as inactive: no oracle)."""
    return client.kind == "service" or (org_id is not None and org_id == client.org_id)


async def introspect(
    session: AsyncSession,
    verifier: TokenVerifier,
    revoked: RevokedTokens,
    *,
    token: str,
    hint: str | None,
    client: ApiClient,
) -> dict[str, Any]:
    """RFC 7662: whether `token` is active, and what it allows. Nothing personal is told: ids,
    roles and scopes, never a name or an email."""
    order = ("access_token", "refresh_token")
    if hint == "refresh_token" or not unverified_claims(token):
        order = ("refresh_token", "access_token")
    for kind in order:
        if kind == "refresh_token":
            answer = await _introspect_refresh(session, token, verifier.clock.now(), client)
        else:
            answer = await _introspect_access(verifier, revoked, token, client)
        if answer is not None:
            return answer
    return dict(INACTIVE)


async def _introspect_access(
    verifier: TokenVerifier, revoked: RevokedTokens, token: str, client: ApiClient
) -> dict[str, Any] | None:
    principal = await _verified(verifier, token)
    if principal is None:
        return None
    if await revoked.any_revoked(revocation_keys(principal.claims)):
        return dict(INACTIVE)
    if not _may_see(client, principal.org_id):
        return dict(INACTIVE)
    claims = principal.claims
    answer: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        "scope": claims.get("scope", ""),
        "sub": principal.subject,
        "aud": claims.get("aud"),
        "iss": claims.get("iss"),
        "exp": claims.get("exp"),
        "iat": claims.get("iat"),
        "jti": principal.token_id,
        "typ": str(principal.kind),
        "roles": sorted(principal.roles),
    }
    if principal.org_id is not None:
        answer["org"] = str(principal.org_id)
    if principal.kind in (PrincipalKind.CLIENT, PrincipalKind.SERVICE):
        answer["client_id"] = principal.subject
    if principal.report_id is not None:
        answer["report"] = str(principal.report_id)
    return answer


async def _introspect_refresh(
    session: AsyncSession, token: str, now: datetime, client: ApiClient
) -> dict[str, Any] | None:
    row = await _refresh_row(session, token)
    if row is None:
        return None
    if row.revoked_at is not None or row.expires_at <= now or row.person_id is None:
        return dict(INACTIVE)
    found = (
        await session.execute(
            select(Person.roles, Person.active, Org.active)
            .join(Org, Org.id == Person.org_id)
            .where(Person.id == row.person_id)
        )
    ).one_or_none()
    if found is None or not found[1] or not found[2] or not _may_see(client, row.org_id):
        return dict(INACTIVE)
    held = scopes_for_roles(found[0] or [])
    scope = row.scope or " ".join(sorted(held))
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": scope,
        "sub": str(row.person_id),
        "org": str(row.org_id) if row.org_id else None,
        "typ": str(PrincipalKind.STAFF),
        "iat": int(row.created_at.timestamp()),
        "exp": int(row.expires_at.timestamp()),
    }


# ----------------------------------------------------------------------------- the gateway check


def _revoked_body(path: str, request_id: str | None) -> bytes:
    problem: dict[str, Any] = {
        "type": PROBLEM_BASE + "token-revoked",
        "title": "Token revoked",
        "status": 401,
        "detail": "This token was revoked; sign in again.",
        "instance": path,
    }
    if request_id:
        problem["request_id"] = request_id
    return json.dumps(problem).encode()


_TOKENLESS_PATHS = frozenset({"/healthz", "/readyz"})


def _takes_no_token(path: str) -> bool:
    return path in _TOKENLESS_PATHS or path.startswith(("/auth/", "/.well-known/"))


_KEYS_REMEMBERED = 4096
_REVOKED_HEADERS = (
    (b"content-type", PROBLEM_JSON.encode()),
    (
        b"www-authenticate",
        b'Bearer realm="upstander", error="invalid_token", '
        b'error_description="The token was revoked"',
    ),
    (b"cache-control", b"no-store"),
)


class RevokedTokenCheck:
    """Edge step (kit/edge.py): refuse (401 `token-revoked`) a bearer token whose `jti` or
    sign-in (`sid`) was revoked, for the gateway's own routes and everything it proxies.
    `/auth/*` is left alone (logging out twice is fine), and so are the routes that take no
    token at all (`/healthz`, `/readyz`, `/.well-known/*`): a probe that happens to carry a
    stale token gets the answer it asked for, not an undocumented 401. The token is only read
    here to find its entry; the routes and the services verify it."""

    name = "revocation"

    def __init__(self, *, gateway: FastAPI) -> None:
        self.gateway = gateway
        # SHA-256 of an Authorization header → the revocation keys it names (unverified).
        self._keys_of: dict[bytes, list[str]] = {}

    def enter(self, exchange: Exchange) -> Any:
        scope = exchange.scope
        if _takes_no_token(scope["path"]):
            return None
        keys = self._keys(exchange)
        revoked: RevokedTokens | None = getattr(self.gateway.state, "revoked_tokens", None)
        if not keys or revoked is None:
            return None
        known = revoked.cached(keys)  # most requests: answered without a coroutine
        if known is False:
            return None
        if known:
            return self._refusal(scope)
        return self._check(scope, revoked, keys)

    @classmethod
    async def _check(cls, scope: Scope, revoked: RevokedTokens, keys: list[str]) -> Answer | None:
        if not await revoked.any_revoked(keys):
            return None
        return cls._refusal(scope)

    @staticmethod
    def _refusal(scope: Scope) -> Answer:
        request_id = scope.get("state", {}).get("request_id")
        body = _revoked_body(scope["path"], request_id)
        headers = list(_REVOKED_HEADERS)
        headers.insert(1, (b"content-length", str(len(body)).encode()))
        return Answer(401, headers, body)

    def _keys(self, exchange: Exchange) -> list[str]:
        value = exchange.header(b"authorization")
        if value is None:
            return []
        digest = hashlib.sha256(value).digest()  # never the token itself in memory
        keys = self._keys_of.get(digest)
        if keys is not None:
            return keys
        kind, _, token = value.decode("latin-1").partition(" ")
        if kind.lower() == "bearer" and token.strip():
            keys = revocation_keys(unverified_claims(token.strip()))
        else:
            keys = []
        # The keys a header names never change: remember them for the next request with it.
        if len(self._keys_of) >= _KEYS_REMEMBERED:
            self._keys_of.clear()
        self._keys_of[digest] = keys
        return keys


class RevokedTokenMiddleware(EdgeMiddleware):
    """`RevokedTokenCheck` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp, *, gateway: FastAPI) -> None:
        super().__init__(app, steps=[RevokedTokenCheck(gateway=gateway)])


def install_revocation_check(app: FastAPI) -> None:
    """Add the revocation check to the app's edge just inside the request id and the access
    log (so its 401 carries the request id and is logged), before the rate limits and the
    proxy."""
    edge_of(app).add_inside(RevokedTokenCheck(gateway=app), "request_id", "access_log")


async def start_revoked_tokens(app: FastAPI) -> None:
    """Startup hook: the record of revoked tokens, and a sweep of entries that expired."""
    settings = app.state.settings
    app.state.revoked_tokens = RevokedTokens(
        app.state.sessionmaker, cache_seconds=float(settings.access_cache_seconds)
    )
    try:
        async with app.state.sessionmaker() as session:
            removed = await prune_revoked(session, app.state.clock.now())
            await session.commit()
        if removed:
            log.info("pruned revoked tokens", extra={"count": removed})
    except Exception as error:  # a sweep is housekeeping: never a reason not to start
        log.warning("could not prune revoked tokens: %s", type(error).__name__)
