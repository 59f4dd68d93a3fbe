"""Browser-facing protections at the edge: CORS for the configured origins, and security
headers on every response (a strict CSP everywhere but the Swagger UI pages)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message

from upstander.gateway.edge.cors import ALLOWED_HEADERS as CORS_ALLOWED_HEADERS
from upstander.gateway.edge.cors import EXPOSED_HEADERS as CORS_EXPOSED_HEADERS
from upstander.gateway.edge.cors import install_cors
from upstander.kit.edge import EdgeMiddleware, Exchange, edge_of

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI loads its script and styles from jsDelivr and boots with an inline script.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
    "connect-src 'self'; "
    "frame-ancestors 'none'"
)
# The reporter page (/r/..., docs/reporter-page.md): its own styles and one small script.
REPORTER_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# The invitation page (/invite, identity/orgs.py): its own script, calls to this origin only.
INVITE_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
INVITE_PAGE_PATHS = frozenset({"/invite", "/invite.js"})
# A reporter page's answer lists the origins its organisation lets frame it in this header
# (web/branding.py); the edge removes it and puts them in `frame-ancestors` instead of 'none'.
FRAME_ANCESTORS_HEADER = b"x-upstander-frame-ancestors"
_ORIGIN = re.compile(rb"^https?://[a-z0-9.\-\[\]:]+$")
HSTS = "max-age=63072000; includeSubDomains"
# The CORS lists live with the CORS layer (edge/cors.py).
EXPOSED_HEADERS = list(CORS_EXPOSED_HEADERS)
ALLOWED_HEADERS = list(CORS_ALLOWED_HEADERS)

_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def is_docs_path(path: str) -> bool:
    """The gateway's `/docs` and each service's proxied `/{service}/docs`."""
    return path.endswith("/docs") or path.endswith("/docs/oauth2-redirect")


_CSP_HEADER = b"content-security-policy"
_HSTS = (b"strict-transport-security", HSTS.encode())
_NO_STORE = (b"cache-control", b"no-store")
_AUTH_CACHE = [_NO_STORE, (b"pragma", b"no-cache")]
_FIXED_FRAMED = tuple(h for h in _FIXED if h[0] != b"x-frame-options")
_API_CSP, _DOCS_CSP = API_CSP.encode(), DOCS_CSP.encode()
_REPORTER_PAGE_CSP, _INVITE_PAGE_CSP = REPORTER_PAGE_CSP.encode(), INVITE_PAGE_CSP.encode()


def _csp(path: str) -> bytes:
    if is_docs_path(path):
        return _DOCS_CSP
    if path.startswith("/r/"):
        return _REPORTER_PAGE_CSP
    if path in INVITE_PAGE_PATHS:
        return _INVITE_PAGE_CSP
    return _API_CSP


class SecurityHeaders:
    """Edge step (kit/edge.py): set the edge's security headers on every HTTP response,
    replacing any a service set. The header sets are built once, not per response."""

    name = "security_headers"

    def __init__(self, *, production: bool = False) -> None:
        self.production = production
        own = {name for name, _ in _FIXED} | {_CSP_HEADER, FRAME_ANCESTORS_HEADER}
        if production:
            own.add(b"strict-transport-security")
        # The headers this layer owns (and drops from the app's answer), off and on /auth/.
        self._own = frozenset(own)
        self._own_auth = frozenset(own | {b"cache-control", b"pragma"})

    def enter(self, exchange: Exchange) -> None:
        exchange.on_start(self._start)

    def _start(self, exchange: Exchange, message: Message) -> None:
        scope = exchange.scope
        path: str = scope["path"]
        auth_path = path.startswith("/auth/")
        csp = _csp(path)
        own = self._own_auth if auth_path else self._own
        original = message.get("headers", [])
        framers = _framers(original) if path.startswith("/r/") else []
        headers = [(k, v) for k, v in original if k.lower() not in own]
        if framers:
            # Embeddable for the organisation's own sites: no DENY, and those origins.
            headers.extend(_FIXED_FRAMED)
            framed = csp.replace(
                b"frame-ancestors 'none'", b"frame-ancestors " + b" ".join(framers)
            )
            headers.append((_CSP_HEADER, framed))
        else:
            headers.extend(_FIXED)
            headers.append((_CSP_HEADER, csp))
        if self.production:
            headers.append(_HSTS)
        if auth_path:
            headers += _AUTH_CACHE
        elif _authorised(exchange) and _is_json(headers) and not _has(headers, b"cache-control"):
            headers.append(_NO_STORE)
        message["headers"] = headers


def _authorised(exchange: Exchange) -> bool:
    """Whether the request came with an Authorization header (as it arrived at the edge: the
    LRS step only ever turns one kind into another)."""
    return any(name == b"authorization" for name, _ in exchange.scope["headers"])


class SecurityHeadersMiddleware(EdgeMiddleware):
    """`SecurityHeaders` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        super().__init__(app, steps=[SecurityHeaders(production=production)])


def _framers(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The origins a reporter page's answer may be framed by (each a bare origin, else none)."""
    for name, value in headers:
        if name.lower() == FRAME_ANCESTORS_HEADER:
            origins = value.split()
            if origins and all(_ORIGIN.fullmatch(o) for o in origins):
                return origins
    return []


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(k.lower() == name for k, _ in headers)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def install_security(app: FastAPI, settings: Any) -> None:
    """CORS for `settings.cors_origins` (none when empty) and the security headers, added as
    the outermost middleware so every response (errors and preflights included) gets them."""
    # CORS per organisation and client, and for `settings.cors_origins` (edge/cors.py).
    install_cors(app, settings)
    edge_of(app).add_outermost(
        SecurityHeaders(production=getattr(settings, "mode", "dev") == "production")
    )
