"""The proxy under slow clients: a small body is read whole before a service is asked (so a
stalled client never holds a connection to a service), large uploads are streamed but only so
many at once per service, and `/healthz` asks the services over a pool of its own."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from edge_support import EdgeSettings, edge_app, fake_service
from starlette.types import Message, Receive, Scope

from upstander.kit.testing import RoutingTransport


class SlowEdgeSettings(EdgeSettings):
    proxy_buffer_body_bytes: int = 1024
    proxy_max_streamed_uploads: int = 1
    health_max_connections: int = 2


class Recorder(httpx.AsyncBaseTransport):
    """A service that notes every request it is asked, then answers from a fake service."""

    def __init__(self, name: str) -> None:
        self.asked: list[str] = []
        self.inner = httpx.ASGITransport(fake_service(name))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url.path)
        return await self.inner.handle_async_request(request)


def _routing(settings: EdgeSettings) -> tuple[RoutingTransport, dict[str, Recorder]]:
    recorders = {name: Recorder(name) for name in ("intake", "cases", "training", "notify")}
    routing = RoutingTransport()
    for name, recorder in recorders.items():
        routing.add(settings.service_url(name), recorder)
    return routing, recorders


def _scope(path: str, length: int) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "client": ("203.0.113.7", 40000),
        "server": ("gateway.test", 80),
        "state": {},
    }


def _half_then_stall(half: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": half, "more_body": True}
        await asyncio.Event().wait()  # a stalled client
        raise AssertionError("unreachable")

    return receive


async def _run(app: Any, scope: Scope, receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_stalled_small_body_never_reaches_the_service():
    settings = SlowEdgeSettings()
    routing, recorders = _routing(settings)
    app = edge_app(settings, routing)

    stalled = asyncio.ensure_future(
        _run(app, _scope("/intake/v1/headers", 400), _half_then_stall(b"{" * 200))
    )
    await asyncio.sleep(0.3)
    asked = list(recorders["intake"].asked)
    stalled.cancel()
    await asyncio.gather(stalled, return_exceptions=True)

    assert asked == []  # the gateway holds it alone, until the kit's deadline cuts it


async def test_a_large_upload_is_streamed_and_only_so_many_at_once_per_service():
    settings = SlowEdgeSettings()
    routing, recorders = _routing(settings)
    app = edge_app(settings, routing)
    size = 10 * settings.proxy_buffer_body_bytes

    streaming = asyncio.ensure_future(
        _run(app, _scope("/cases/v1/digest", size), _half_then_stall(b"x" * (size // 2)))
    )
    await asyncio.sleep(0.3)
    second = await _run(app, _scope("/cases/v1/digest", size), _half_then_stall(b"x"))
    other_service = await _run(app, _scope("/training/v1/digest", 2), _whole(b"{}"))
    streaming.cancel()
    await asyncio.gather(streaming, return_exceptions=True)

    assert recorders["cases"].asked == ["/cases/v1/digest"]  # the first went on, streamed
    start = second[0]
    assert start["status"] == 503
    assert dict(start["headers"])[b"retry-after"] == b"5"
    assert json.loads(second[1]["body"])["type"].endswith("/service-unavailable")
    assert other_service[0]["status"] == 200


async def test_healthz_asks_the_services_over_a_small_pool_of_its_own():
    settings = SlowEdgeSettings()
    routing, _ = _routing(settings)
    app = edge_app(settings, routing)

    health, proxy = app.state.health_upstreams, app.state.upstreams

    assert health is not proxy
    assert health.max_connections == 2
    assert proxy.max_connections == 200


def _whole(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive
