"""CORS at the edge, per organisation and per client: one pure-ASGI layer.

Which browser origins may call the API comes from three places: the platform's
`cors_origins` setting (every organisation), an organisation's own list
(`PUT /identity/v1/orgs/current/cors`) and each API client's `allowed_origins`
(`PUT /identity/v1/clients/{id}/browser`). The layer keeps the union in memory, origin →
the organisations that allow it, read again every `cors_cache_seconds` (and at once after a
change through this replica).

- A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
  answered here for every path, the services' included, with the methods and request headers
  the API takes (xAPI's `X-Experience-API-Version`, `If-Match`, `If-None-Match`, ...); from any
  other origin it is a 403 problem.
- An actual request from an allowed origin gets `Access-Control-Allow-Origin` and the exposed
  headers (`ETag`, `Idempotent-Replayed`, `Retry-After`, `Link`, `Location`,
  `X-Experience-API-Consistent-Through`, ...) when its bearer token is of an organisation that
  allows the origin (or carries none, or the origin is the platform's). The token is only
  peeked at for its `org` claim: this decides what a browser may read, never who is
  authorised (the routes verify the token).
- No credentials mode: the API takes bearer tokens, never cookies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from starlette.types import ASGIApp, Message, Scope

from upstander.kit.edge import Answer, EdgeMiddleware, Exchange, edge_of

PLATFORM = "platform"
EXPOSED_HEADERS = (
    "ETag",
    "Idempotent-Replayed",
    "Retry-After",
    "Link",
    "Location",
    "X-Request-ID",
    "X-Experience-API-Consistent-Through",
    "X-Experience-API-Version",
)
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Accept-Language",
    "Content-Language",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
    "X-Experience-API-Version",
    "traceparent",
    "tracestate",
)
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
MAX_AGE_SECONDS = 600
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

__all__ = [
    "ALLOWED_HEADERS",
    "EXPOSED_HEADERS",
    "Cors",
    "CorsMiddleware",
    "OriginRegistry",
    "install_cors",
    "normalise_origin",
]


def _loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower-cased, default port dropped; https, or http for a
    loopback host. ValueError otherwise (a path, a wildcard, credentials...)."""
    value = origin.strip()
    parts = urlsplit(value)
    if (
        len(value) > 300
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "*" in value
        or any(ord(c) < 33 or ord(c) == 127 for c in value)
    ):
        raise ValueError("an origin is scheme://host[:port], with no path")
    host = parts.hostname.lower()
    if parts.scheme == "http" and not _loopback(host):
        raise ValueError("plain http origins are only for localhost")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("an origin's port is a number") from None
    if port is None or port == {"https": 443, "http": 80}[parts.scheme]:
        netloc = f"[{host}]" if ":" in host else host
    else:
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}"


class OriginRegistry:
    """Origin → who allows it: `PLATFORM` (the setting) and/or organisation ids. Read from
    the gateway's database (through `app.state.sessionmaker`, when there is one) at most once
    per `ttl` seconds."""

    def __init__(
        self,
        app: Any,
        platform_origins: Iterable[str],
        ttl: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.platform: frozenset[str] = frozenset(
            _safe_normalise(origin) for origin in platform_origins
        ) - {""}
        self.ttl = ttl
        self.monotonic = monotonic
        self._origins: dict[str, frozenset[Any]] = {o: frozenset({PLATFORM}) for o in self.platform}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._loaded_at = None

    async def lookup(self, origin: str) -> frozenset[Any]:
        """Who allows `origin` (empty: nobody)."""
        key = _safe_normalise(origin)
        if not key:
            return frozenset()
        if self._stale():
            async with self._lock:
                if self._stale():
                    await self._load()
        return self._origins.get(key, frozenset())

    def _stale(self) -> bool:
        if getattr(self.app.state, "sessionmaker", None) is None:
            return False
        return self._loaded_at is None or self.monotonic() - self._loaded_at >= self.ttl

    async def _load(self) -> None:
        # Imported here: the edge is also installed on apps without the gateway's models.
        from upstander.gateway.auth.store import OrgCorsOrigins
        from upstander.gateway.models import ApiClient, Org

        origins: dict[str, set[Any]] = {o: {PLATFORM} for o in self.platform}
        sessionmaker = self.app.state.sessionmaker
        try:
            async with sessionmaker() as session:
                clients = await session.execute(
                    select(ApiClient.org_id, ApiClient.allowed_origins)
                    .join(Org, Org.id == ApiClient.org_id)
                    .where(ApiClient.active.is_(True), Org.active.is_(True))
                )
                orgs = await session.execute(
                    select(OrgCorsOrigins.org_id, OrgCorsOrigins.origins)
                    .join(Org, Org.id == OrgCorsOrigins.org_id)
                    .where(Org.active.is_(True))
                )
                for org_id, listed in [*clients.all(), *orgs.all()]:
                    for origin in listed or []:
                        key = _safe_normalise(str(origin))
                        if key:
                            origins.setdefault(key, set()).add(org_id)
        except Exception:  # the database is down: keep what we knew, try again next time
            self._loaded_at = self.monotonic()
            return
        self._origins = {origin: frozenset(owners) for origin, owners in origins.items()}
        self._loaded_at = self.monotonic()


def _safe_normalise(origin: str) -> str:
    try:
        return normalise_origin(origin)
    except ValueError:
        return ""


def _token_org(scope: Scope) -> uuid.UUID | bool | None:
    """The `org` claim of the request's bearer token, unverified; None when there is no
    token (or it names no organisation), False when it cannot be read."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() != "bearer":
                return None
            parts = token.strip().split(".")
            if len(parts) != 3 or len(parts[1]) > 8192:
                return False
            try:
                payload = parts[1] + "=" * (-len(parts[1]) % 4)
                claims = json.loads(base64.urlsafe_b64decode(payload))
                org = claims.get("org") if isinstance(claims, dict) else None
                return uuid.UUID(org) if isinstance(org, str) else None
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return False
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


_EXPOSED = ", ".join(EXPOSED_HEADERS).encode()
_ALLOWED_HEADERS = ", ".join(ALLOWED_HEADERS).encode()
_ALLOWED_METHODS = ", ".join(ALLOWED_METHODS).encode()
_FORBIDDEN = json.dumps(
    {
        "type": "https://upstander.dev/problems/cors-origin-not-allowed",
        "title": "Origin not allowed",
        "status": 403,
        "detail": "This origin may not call the API; an admin adds it to the organisation's "
        "or a client's allowed origins.",
    }
).encode()


class Cors:
    """Edge step (kit/edge.py): the one CORS layer (see the module docstring). A request
    without `Origin` costs one header scan."""

    name = "cors"

    def __init__(self, *, registry: OriginRegistry) -> None:
        self.registry = registry

    def enter(self, exchange: Exchange) -> Any:
        origin = exchange.header(b"origin")
        if origin is None:
            return None
        return self._enter(exchange, origin.decode("latin-1"))

    async def _enter(self, exchange: Exchange, origin: str) -> Answer | None:
        scope = exchange.scope
        owners = await self.registry.lookup(origin)
        preflight = scope["method"] == "OPTIONS" and _header(
            scope, b"access-control-request-method"
        )
        if preflight:
            return self._preflight(origin, bool(owners))
        allowed = bool(owners) and (PLATFORM in owners or self._org_allows(scope, owners))
        if not allowed:
            exchange.on_start(_vary_hook)
            return None
        exchange.state["cors"] = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", _EXPOSED),
        ]
        exchange.on_start(_cors_hook)
        return None

    @staticmethod
    def _org_allows(scope: Scope, owners: frozenset[Any]) -> bool:
        org = _token_org(scope)
        if org is None:
            return True  # no token (or none of an organisation): nothing of anyone's to read
        return org is not False and org in owners

    @staticmethod
    def _preflight(origin: str, allowed: bool) -> Answer:
        if allowed:
            status, body = 200, b""
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", _ALLOWED_METHODS),
                (b"access-control-allow-headers", _ALLOWED_HEADERS),
                (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
                (b"content-length", b"0"),
            ]
        else:
            status, body = 403, _FORBIDDEN
            headers = [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ]
        return Answer(status, _with_vary(headers), body)


def _cors_hook(exchange: Exchange, message: Message) -> None:
    headers = [
        (k, v)
        for k, v in message.get("headers", [])
        if not k.lower().startswith(b"access-control-")
    ]
    message["headers"] = _with_vary([*headers, *exchange.state["cors"]])


def _vary_hook(_exchange: Exchange, message: Message) -> None:
    message["headers"] = _with_vary(list(message.get("headers", [])))


class CorsMiddleware(EdgeMiddleware):
    """`Cors` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp, *, registry: OriginRegistry) -> None:
        super().__init__(app, steps=[Cors(registry=registry)])


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            if b"origin" not in value.lower():
                headers[index] = (name, value + b", Origin")
            return headers
    return [*headers, (b"vary", b"Origin")]


def install_cors(app: Any, settings: Any) -> OriginRegistry:
    """Add the CORS step to the app's edge, outermost (call it just before adding the
    security headers, which go outside it); `app.state.cors_registry` is its registry."""
    registry = OriginRegistry(
        app,
        list(getattr(settings, "cors_origins", []) or []),
        ttl=float(getattr(settings, "cors_cache_seconds", 30.0)),
    )
    app.state.cors_registry = registry
    edge_of(app).add_outermost(Cors(registry=registry))
    return registry
