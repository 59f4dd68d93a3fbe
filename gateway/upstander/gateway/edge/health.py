"""`GET /healthz` for the whole platform: the gateway and each service's readiness at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from upstander.gateway.proxy.upstreams import SERVICES, UpstreamPool, get_health_upstreams
from upstander.kit.routing import remove_routes

log = logging.getLogger("upstander.gateway.health")

READY_TIMEOUT_SECONDS = 2.0


class ComponentHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class PlatformHealth(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, ComponentHealth]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "status": "degraded",
                    "services": {
                        "gateway": {"status": "ok"},
                        "intake": {"status": "ok"},
                        "cases": {"status": "unavailable", "detail": "unreachable"},
                    },
                }
            ]
        }
    }


async def _service_ready(pool: UpstreamPool, service: str, seconds: float) -> ComponentHealth:
    url = f"{pool.base_url(service)}/readyz"
    try:
        response = await asyncio.wait_for(
            pool.client(service).get(url, timeout=seconds), seconds + 0.5
        )
    except (httpx.TimeoutException, TimeoutError):
        return ComponentHealth(status="unavailable", detail="timeout")
    except httpx.HTTPError:
        return ComponentHealth(status="unavailable", detail="unreachable")
    if response.status_code != 200:
        return ComponentHealth(status="unavailable", detail=f"readyz {response.status_code}")
    try:
        ok = response.json().get("status") == "ok"
    except ValueError:
        ok = False
    return (
        ComponentHealth(status="ok")
        if ok
        else ComponentHealth(status="unavailable", detail="not ready")
    )


async def _gateway_ready(app: Any, seconds: float) -> ComponentHealth:
    engine = getattr(app.state, "engine", None)
    if engine is None:
        return ComponentHealth(status="ok")
    try:
        async with asyncio.timeout(seconds), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("gateway database not reachable: %s", type(exc).__name__)
        return ComponentHealth(status="unavailable", detail="database unreachable")
    return ComponentHealth(status="ok")


def health_router(
    settings: Any,
    *,
    pool: UpstreamPool | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    services: tuple[str, ...] = SERVICES,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> APIRouter:
    """A router with the aggregate `GET /healthz` (200 when all are ready, else 503)."""
    upstreams = pool or UpstreamPool(settings, transport=transport, services=services)
    router = APIRouter(tags=["operations"])
    running: asyncio.Future[PlatformHealth] | None = None

    async def check(app: Any) -> PlatformHealth:
        results = await asyncio.gather(
            _gateway_ready(app, timeout),
            *(_service_ready(upstreams, name, timeout) for name in services),
        )
        components = dict(zip(("gateway", *services), results, strict=True))
        healthy = all(c.status == "ok" for c in components.values())
        return PlatformHealth(status="ok" if healthy else "degraded", services=components)

    @router.get(
        "/healthz",
        operation_id="get_platform_health",
        summary="Health of the gateway and every service",
        response_model=PlatformHealth,
        responses={503: {"model": PlatformHealth, "description": "Some part is unavailable"}},
    )
    async def platform_health(request: Request) -> JSONResponse:
        nonlocal running
        # Callers that arrive while a check is running share it: a flood of `/healthz` costs
        # one check at a time, and never queues on the health pool's few connections.
        if running is None or running.done():
            running = asyncio.ensure_future(check(request.app))
        report = await asyncio.shield(running)
        healthy = report.status == "ok"
        return JSONResponse(
            report.model_dump(exclude_none=True),
            status_code=200 if healthy else 503,
            headers={"Cache-Control": "no-store"},
        )

    return router


def install_health(
    app: FastAPI, settings: Any, *, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Replace the kit's per-process `/healthz` with the platform-wide one (`/readyz` stays the
    gateway's own readiness). It asks the services over a pool of its own: a proxy pool full
    of slow traffic must not make a healthy platform answer 503."""
    remove_routes(app, {"/healthz"})
    pool = get_health_upstreams(app, settings, transport)
    app.include_router(health_router(settings, pool=pool))
