"""Browser-facing protections at the edge: CORS for the configured origins, and security
headers on every response (a strict CSP everywhere but the Swagger UI pages)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstander.gateway.edge.cors import ALLOWED_HEADERS as CORS_ALLOWED_HEADERS
from upstander.gateway.edge.cors import EXPOSED_HEADERS as CORS_EXPOSED_HEADERS
from upstander.gateway.edge.cors import install_cors

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


class SecurityHeadersMiddleware:
    """Set the edge's security headers on every HTTP response, replacing any a service set."""

    def __init__(self, app: ASGIApp, *, production: bool = False) -> None:
        self.app = app
        self.production = production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        auth_path = path.startswith("/auth/")
        authorised = any(name == b"authorization" for name, _ in scope["headers"])
        reporter_page = path.startswith("/r/")
        csp = (
            DOCS_CSP
            if is_docs_path(path)
            else REPORTER_PAGE_CSP
            if reporter_page
            else INVITE_PAGE_CSP
            if path in INVITE_PAGE_PATHS
            else API_CSP
        ).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = {name for name, _ in _FIXED} | {b"content-security-policy"}
                if self.production:
                    own.add(b"strict-transport-security")
                if auth_path:
                    own |= {b"cache-control", b"pragma"}
                framers = _framers(message.get("headers", [])) if reporter_page else []
                own.add(FRAME_ANCESTORS_HEADER)
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in own]
                if framers:
                    # Embeddable for the organisation's own sites: no DENY, and those origins.
                    headers.extend(h for h in _FIXED if h[0] != b"x-frame-options")
                    framed = csp.replace(
                        b"frame-ancestors 'none'", b"frame-ancestors " + b" ".join(framers)
                    )
                    headers.append((b"content-security-policy", framed))
                else:
                    headers.extend(_FIXED)
                    headers.append((b"content-security-policy", csp))
                if self.production:
                    headers.append((b"strict-transport-security", HSTS.encode()))
                if auth_path:
                    headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
                elif authorised and _is_json(headers) and not _has(headers, b"cache-control"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
    app.add_middleware(
        SecurityHeadersMiddleware, production=getattr(settings, "mode", "dev") == "production"
    )
