"""The gateway's edge: security headers and CORS, rate limits, the platform health, the merged
OpenAPI document, and (last) the reverse proxy to the services."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from upstander.gateway.edge.health import health_router, install_health
from upstander.gateway.edge.limitstore import ReceiptLimits, WindowLimit, open_store
from upstander.gateway.edge.openapi import MergedOpenAPI, install_openapi, merge_openapi
from upstander.gateway.edge.ratelimit import (
    GrowingDelayLimiter,
    RateLimit,
    RateLimitMiddleware,
    ReceiptLimiter,
    SlidingWindowLimiter,
    anonymise,
)
from upstander.gateway.edge.security import (
    SecurityHeaders,
    SecurityHeadersMiddleware,
    install_security,
)
from upstander.gateway.proxy import install_proxy
from upstander.kit.clock import Clock
from upstander.kit.edge import edge_of

__all__ = [
    "GrowingDelayLimiter",
    "MergedOpenAPI",
    "RateLimit",
    "RateLimitMiddleware",
    "ReceiptLimiter",
    "ReceiptLimits",
    "SecurityHeaders",
    "SecurityHeadersMiddleware",
    "SlidingWindowLimiter",
    "WindowLimit",
    "anonymise",
    "health_router",
    "install_edge",
    "install_health",
    "install_openapi",
    "install_proxy",
    "install_rate_limits",
    "install_security",
    "merge_openapi",
    "stop_rate_limits",
]


def install_rate_limits(app: FastAPI, settings: Any, *, clock: Clock | None = None) -> None:
    """Per-source limit on `/auth/*` (middleware), and limits for the auth handlers on
    `app.state`, async and in the store `rate_limit_store` chooses (limitstore.py):
    `auth_source_limits` (the middleware's), `auth_account_limits` (per client id / username:
    `await hit("client:<key>")` → retry-after seconds or None) and `receipt_limits` (receipt-code
    exchanges). Their in-memory limiters (the memory store, and the receipt limits' fallback
    while a shared store is unreachable) are `auth_source_limiter`, `auth_account_limiter` and
    `receipt_limiter`; `limit_store` is the shared store or None."""
    clock = clock or getattr(app.state, "clock", None) or Clock()
    store = open_store(settings)
    app.state.limit_store = store
    per_source = int(getattr(settings, "auth_rate_limit_per_minute", 30))
    per_account = int(getattr(settings, "auth_account_rate_limit_per_minute", 10))
    source = SlidingWindowLimiter(per_source, 60, clock=clock)
    app.state.auth_source_limiter = source
    app.state.auth_account_limiter = SlidingWindowLimiter(per_account, 60, clock=clock)
    app.state.receipt_limiter = ReceiptLimiter(
        burst=int(getattr(settings, "receipt_source_burst", 5)),
        per_minute=float(getattr(settings, "receipt_source_per_minute", 5.0)),
        org_failures_per_minute=int(getattr(settings, "receipt_org_failures_per_minute", 30)),
        suspect_failures=int(getattr(settings, "receipt_suspect_failures", 3)),
        failure_memory_seconds=float(getattr(settings, "receipt_failure_memory_seconds", 900.0)),
        clock=clock,
    )
    app.state.auth_source_limits = WindowLimit("auth-source", source, store)
    app.state.auth_account_limits = WindowLimit(
        "auth-account", app.state.auth_account_limiter, store
    )
    app.state.receipt_limits = ReceiptLimits(app.state.receipt_limiter, store)
    # Just inside the request id and the access log, so a 429 carries the request id and is
    # logged.
    edge_of(app).add_inside(
        RateLimit(
            limiter=app.state.auth_source_limits,
            # Escrow entries and private records too: guessing who is named, or a record
            # code, is limited per source (docs/escrow.md).
            prefixes=("/auth/", "/intake/v1/escrow", "/intake/v1/records"),
        ),
        "request_id",
        "access_log",
    )


async def stop_rate_limits(app: FastAPI) -> None:
    """Shutdown hook (ServiceSpec.on_shutdown): close the shared store's connections."""
    store = getattr(app.state, "limit_store", None)
    if store is not None:
        await store.aclose()


def install_edge(
    app: FastAPI,
    settings: Any,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> None:
    """Everything at the edge, in one call, after the gateway's own routers are included.

    Add `upstander.gateway.proxy.start_upstreams` / `stop_upstreams` to the gateway's
    ServiceSpec on_startup / on_shutdown so the upstream clients open and close with the app.
    """
    install_security(app, settings)
    install_rate_limits(app, settings, clock=clock)
    install_health(app, settings, transport=transport)
    install_openapi(app, settings, transport=transport, clock=clock)
    install_proxy(app, settings, transport=transport)
