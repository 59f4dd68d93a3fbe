"""The service factory: every service (and the gateway) is built the same way."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import MetaData, text

from upstander.kit.auth import JWKSCache, TokenVerifier
from upstander.kit.clock import Clock
from upstander.kit.crypto import Keyring
from upstander.kit.db import (
    CommittingRoute,
    DatabaseTimeouts,
    check_session_routes,
    is_in_memory,
    make_engine,
    make_sessionmaker,
)
from upstander.kit.documents import serve_openapi
from upstander.kit.edge import Step, edge_of
from upstander.kit.errors import UnexpectedErrors, install_problem_handlers, problem_responses
from upstander.kit.events import (
    install_events,
    start_event_delivery,
    start_events,
    stop_events,
)
from upstander.kit.http import DEFAULT_CONTENT_TYPES, BodyDeadline, BodyGuard, tls_context
from upstander.kit.idempotency import Idempotency
from upstander.kit.migrations import upgrade_to_head
from upstander.kit.observability import (
    AccessLog,
    Metrics,
    RequestId,
    configure_logging,
    flush_access_lines,
    metrics_endpoint,
)
from upstander.kit.revocation import ACCESS_CHANGED, AccessLedger, on_access_changed
from upstander.kit.routing import remove_routes
from upstander.kit.settings import KitSettings

log = logging.getLogger("upstander.app")

# Connections (and as many more under load) of the access ledger's pool of its own.
LEDGER_POOL_SIZE = 1

Hook = Callable[[FastAPI], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What makes one service different from another; everything else is the kit's."""

    name: str
    title: str
    description: str
    version: str = "1.0.0"
    metadata: MetaData | None = None
    migrations_dir: Path | None = None
    routers: list[APIRouter] = field(default_factory=list)
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    # Path prefix → media types accepted there besides `content_types` (`*/*`: any).
    content_types_under: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_body_bytes: int = 10 * 1024 * 1024
    # Requests one source address may hold open while their bodies are still arriving (0: no
    # cap). Only the gateway sets it: behind it, every request comes from the gateway.
    slow_requests_per_source: int = 0
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    # The service's (Outbox, Inbox) tables from `events.event_tables(Model)`, and the
    # handlers of the event types it consumes (exact types or fnmatch patterns), each
    # `async def handler(event: CloudEvent, ctx: EventContext) -> None`.
    event_tables: tuple[type, type] | None = None
    event_handlers: dict[str, Any] = field(default_factory=dict)
    # What it consumes on NATS (`events.Subscription`: a durable consumer per lane); by
    # default one per noun its handlers name (`events.subscriptions_for`).
    event_subscriptions: tuple[Any, ...] | None = None
    # The service's table from `idempotency.idempotency_table(Model)`: writes then honour
    # `Idempotency-Key`.
    idempotency_table: type | None = None
    # The service's table from `revocation.access_table(Model)`: it then keeps the ledger of
    # access changes (`upstander.access.changed`) and refuses tokens they revoked.
    access_table: type | None = None


def make_router(prefix: str = "", tags: list[str] | None = None) -> APIRouter:
    """A router whose routes commit the request's session before the response is sent."""
    return APIRouter(
        prefix=prefix,
        tags=list(tags or []),
        route_class=CommittingRoute,
        responses=problem_responses(401, 403, 404, 422, 500, 503),
    )


def create_service_app(
    settings: KitSettings,
    spec: ServiceSpec,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build a service. `transport` replaces the network for outgoing HTTP (tests wire apps
    together in-process with it); `clock` replaces the real clock."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level, settings.log_json)
        check_session_routes(app)
        if settings.database_url:
            if spec.migrations_dir is not None and settings.should_migrate_on_start:
                await upgrade_to_head(
                    settings.database_url, spec.migrations_dir, migrate_in_child=True
                )
            app.state.engine = make_engine(
                settings.database_url, timeouts=DatabaseTimeouts.from_settings(settings)
            )
            app.state.sessionmaker = make_sessionmaker(app.state.engine)
        timeout = httpx.Timeout(settings.http_read_timeout, connect=settings.http_connect_timeout)
        app.state.http = httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False, verify=tls_context()
        )
        jwks = JWKSCache(settings.jwks_url, app.state.http, max_age=settings.jwks_cache_seconds)
        app.state.token_verifier = TokenVerifier(
            jwks,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            clock=app.state.clock,
        )
        app.state.ledger_engine = None
        if spec.access_table is not None and settings.database_url:
            ledger_sessions = app.state.sessionmaker
            if not is_in_memory(settings.database_url):
                # The ledger reads through a pool of its own: a request that holds one of the
                # app's connections while its token is checked must never wait for a second
                # one from the same pool (as many such requests as the pool holds would wait
                # for each other until the pool's timeout: tests/intake/test_reports.py).
                app.state.ledger_engine = make_engine(
                    settings.database_url,
                    timeouts=DatabaseTimeouts.from_settings(settings),
                    pool_size=LEDGER_POOL_SIZE,
                )
                ledger_sessions = make_sessionmaker(app.state.ledger_engine)
            ledger = AccessLedger(
                ledger_sessions,
                spec.access_table,
                cache_seconds=settings.access_cache_seconds,
            )
            app.state.access_ledger = ledger
            app.state.token_verifier.revocation_check = ledger.is_revoked
        try:
            if spec.event_tables is not None:
                await start_events(app)
            for hook in spec.on_startup:
                await hook(app)
            if spec.event_tables is not None:
                # Last: handlers use what the hooks made (vault, workers).
                await start_event_delivery(app)
            log.info("started", extra={"version": spec.version})
            yield
        finally:
            flush_access_lines()
            for hook in reversed(spec.on_shutdown):
                try:
                    await hook(app)
                except Exception:
                    log.exception("shutdown hook failed")
            await stop_events(app)
            await app.state.http.aclose()
            if settings.database_url:
                await app.state.engine.dispose()
            if app.state.ledger_engine is not None:
                await app.state.ledger_engine.dispose()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
        docs_url="/docs" if spec.name == "gateway" else f"/{spec.name}/docs",
        openapi_url="/openapi.json" if spec.name == "gateway" else f"/{spec.name}/openapi.json",
        redoc_url=None,
        # The platform exports no OpenTelemetry (its metrics are Prometheus's, kit/observability):
        # FastAPI's native telemetry would only cost a provider check on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.router.route_class = CommittingRoute
    _serve_openapi_document(app)
    app.state.settings = settings
    app.state.clock = clock or Clock()
    app.state.metrics = Metrics(spec.name)
    app.state.service_name = spec.name
    install_problem_handlers(app, catch_unexpected=False)

    # One layer (kit/edge.py), its steps outermost first: request id, access log, body guard,
    # idempotency (writes with a key), and the answer to an error no handler took. The gateway
    # adds its own steps around and inside these (gateway/edge, gateway/auth).
    steps: list[Step] = [
        RequestId(),
        AccessLog(app.state.metrics),
        BodyGuard(
            max_bytes=spec.max_body_bytes,
            content_types=spec.content_types,
            content_types_under=spec.content_types_under,
            deadline=BodyDeadline.from_settings(settings),
            per_source=spec.slow_requests_per_source,
        ),
    ]
    if spec.idempotency_table is not None:
        steps.append(Idempotency(spec.idempotency_table))
        app.state.idempotency_keyring = Keyring.from_settings(settings)
    steps.append(UnexpectedErrors())
    edge_of(app).steps.extend(steps)

    for router in spec.routers:
        app.include_router(router)
    if spec.event_tables is not None:
        outbox, inbox = spec.event_tables
        handlers = dict(spec.event_handlers)
        if spec.access_table is not None:
            handlers.setdefault(ACCESS_CHANGED, on_access_changed)
        install_events(
            app, spec.name, outbox, inbox, handlers, subscriptions=spec.event_subscriptions
        )
    _add_operational_routes(app, spec)
    return app


def _serve_openapi_document(app: FastAPI) -> None:
    """FastAPI's document route, serving the bytes `upstander.kit.documents` keeps (built by a
    child when the app is served) instead of building the document in the server. The same
    bytes as FastAPI's route; no `root_path` is ever set on our servers (`kit.server`)."""
    url = app.openapi_url
    if url is None:
        return
    remove_routes(app, {url})
    served = serve_openapi(app)

    async def openapi_document(request: Request) -> Response:
        return Response(await served.body(), media_type="application/json")

    app.add_route(url, openapi_document, methods=["GET"], include_in_schema=False)


def _add_operational_routes(app: FastAPI, spec: ServiceSpec) -> None:
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz", operation_id=f"{spec.name}_healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @ops.get("/readyz", operation_id=f"{spec.name}_readyz", summary="Readiness: database reachable")
    async def readyz(request: Request) -> JSONResponse:
        if not getattr(request.app.state, "sessionmaker", None):
            return JSONResponse({"status": "ok", "service": spec.name})
        try:
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("database not reachable: %s", type(exc).__name__)
            return JSONResponse(
                {"status": "unavailable", "service": spec.name, "database": "unreachable"},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "service": spec.name, "database": "ok"})

    ops.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.include_router(ops)
