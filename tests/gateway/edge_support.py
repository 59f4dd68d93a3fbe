"""Shared pieces for the gateway edge tests: settings, fake services, a standalone edge app."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from upstander.gateway.edge import install_edge
from upstander.kit.clock import FrozenClock
from upstander.kit.edge import edge_of
from upstander.kit.errors import install_problem_handlers
from upstander.kit.observability import RequestId
from upstander.kit.settings import KitSettings

CLIENT_IP = "203.0.113.7"


class EdgeSettings(KitSettings):
    cors_origins: list[str] = []
    max_body_bytes: int = 25 * 1024 * 1024
    auth_rate_limit_per_minute: int = 30


def pattern_bytes(size: int, chunk: int = 64 * 1024) -> list[bytes]:
    """Deterministic, non-repeating-looking chunks adding up to `size` bytes."""
    chunks, produced, counter = [], 0, 0
    while produced < size:
        block = hashlib.sha256(str(counter).encode()).digest() * (chunk // 32)
        block = block[: min(chunk, size - produced)]
        chunks.append(block)
        produced += len(block)
        counter += 1
    return chunks


async def stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def fake_service(name: str) -> FastAPI:
    """A service-shaped app with routes that show what the proxy did."""
    app = FastAPI(openapi_url=f"/{name}/openapi.json", docs_url=f"/{name}/docs")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route(f"/{name}/v1/headers", methods=["GET", "POST"], include_in_schema=False)
    async def headers(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
                "path": request.scope["path"],
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.scope["query_string"].decode(),
            }
        )

    @app.post(f"/{name}/v1/echo")
    async def echo(request: Request) -> StreamingResponse:
        # Read first: Starlette's StreamingResponse also listens on `receive` while it streams.
        body = await request.body()
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        return StreamingResponse(stream(chunks), media_type="application/octet-stream")

    @app.post(f"/{name}/v1/digest")
    async def digest(request: Request) -> dict[str, Any]:
        sha, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            sha.update(chunk)
            size += len(chunk)
        return {"sha256": sha.hexdigest(), "size": size}

    @app.get(f"/{name}/v1/download")
    async def download(size: int) -> StreamingResponse:
        return StreamingResponse(stream(pattern_bytes(size)), media_type="application/octet-stream")

    @app.get(f"/{name}/v1/cookies")
    async def cookies() -> Response:
        response = JSONResponse({"ok": True})
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        response.headers["Connection"] = "close, x-secret-hop"
        response.headers["X-Secret-Hop"] = "1"
        response.headers["Keep-Alive"] = "timeout=5"
        response.headers["Proxy-Authenticate"] = "Basic"
        return response

    return app


class TokenOut(BaseModel):
    access_token: str


def edge_app(
    settings: EdgeSettings,
    transport: httpx.AsyncBaseTransport | None,
    clock: FrozenClock | None = None,
) -> FastAPI:
    """A standalone app built like the gateway: problem handlers, request ids, then the edge."""
    app = FastAPI(title="Upstander", version="1.0.0")
    app.state.clock = clock or FrozenClock()
    install_problem_handlers(app)
    edge_of(app).add_innermost(RequestId())

    @app.post("/auth/token", operation_id="create_token")
    async def token() -> TokenOut:
        return TokenOut(access_token="t")

    @app.get("/healthz")  # what the kit registers; the edge must replace it
    async def kit_healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    install_edge(app, settings, transport=transport)
    return app


def client_for(app: FastAPI, ip: str = CLIENT_IP, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, client=(ip, 40000)),
        base_url="http://gateway.test",
        **kwargs,
    )
