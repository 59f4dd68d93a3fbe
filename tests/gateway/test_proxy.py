"""The gateway's reverse proxy: streaming, headers, anonymity, limits and upstream failures."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time

import httpx
import pytest
from edge_support import (
    CLIENT_IP,
    EdgeSettings,
    client_for,
    edge_app,
    fake_service,
    pattern_bytes,
    stream,
)

from upstander.kit.testing import RoutingTransport

PROBLEM = "application/problem+json"


@pytest.fixture
def settings() -> EdgeSettings:
    return EdgeSettings()


@pytest.fixture
def routing(settings: EdgeSettings) -> RoutingTransport:
    transport = RoutingTransport()
    for name in ("intake", "cases", "training", "notify"):
        transport.add(settings.service_url(name), fake_service(name))
    return transport


@pytest.fixture
async def client(settings: EdgeSettings, routing: RoutingTransport):
    async with client_for(edge_app(settings, routing)) as client:
        yield client


def _headers(payload: dict) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in payload["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


async def test_large_body_streams_upstream_and_back_byte_exact(client: httpx.AsyncClient):
    chunks = pattern_bytes(20 * 1024 * 1024)
    sent = hashlib.sha256(b"".join(chunks)).hexdigest()

    digest = await client.post("/cases/v1/digest", content=stream(chunks))
    echoed = await client.post("/cases/v1/echo", content=stream(chunks))

    assert digest.status_code == 200
    assert digest.json() == {"sha256": sent, "size": 20 * 1024 * 1024}
    assert echoed.status_code == 200
    assert hashlib.sha256(echoed.content).hexdigest() == sent


async def test_large_download_streams_back_byte_exact(client: httpx.AsyncClient):
    size = 20 * 1024 * 1024
    expected = hashlib.sha256(b"".join(pattern_bytes(size))).hexdigest()

    async with client.stream("GET", "/training/v1/download", params={"size": size}) as response:
        sha = hashlib.sha256()
        async for chunk in response.aiter_raw():
            sha.update(chunk)

    assert response.status_code == 200
    assert sha.hexdigest() == expected


async def test_path_and_query_are_forwarded_unchanged(client: httpx.AsyncClient):
    response = await client.get("/cases/v1/headers?a=1&b=%20x&a=2")

    assert response.json()["raw_path"] == "/cases/v1/headers"
    assert response.json()["query"] == "a=1&b=%20x&a=2"


async def test_hop_by_hop_and_internal_headers_are_stripped_upstream(client: httpx.AsyncClient):
    response = await client.get(
        "/cases/v1/headers",
        headers={
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic eA==",
            "TE": "trailers",
            "Upgrade": "websocket",
            "X-Upstander-Principal": "admin",
            "X-Upstander-Org": "other",
            "Authorization": "Bearer abc",
        },
    )

    seen = _headers(response.json())
    for name in ("x-client-hop", "keep-alive", "proxy-authorization", "te", "upgrade"):
        assert name not in seen
    assert not [name for name in seen if name.startswith("x-upstander-")]
    assert seen["host"] == ["127.0.0.1:8002"]
    assert seen["authorization"] == ["Bearer abc"]


async def test_hop_by_hop_response_headers_are_stripped_and_set_cookies_kept(
    client: httpx.AsyncClient,
):
    response = await client.get("/cases/v1/cookies")

    assert response.status_code == 200
    assert sorted(c.split(";")[0] for c in response.headers.get_list("set-cookie")) == [
        "a=1",
        "b=2",
    ]
    for name in ("x-secret-hop", "keep-alive", "proxy-authenticate"):
        assert name not in response.headers
    assert response.headers.get("connection") in (None, "keep-alive")


async def test_upstream_cookies_are_never_replayed_on_other_requests(
    settings: EdgeSettings, routing: RoutingTransport
):
    app = edge_app(settings, routing)
    async with client_for(app) as first:
        await first.get("/cases/v1/cookies")
    async with client_for(app, ip="198.51.100.9") as second:
        response = await second.get("/cases/v1/headers")

    assert "cookie" not in _headers(response.json())


async def test_request_id_and_traceparent_are_propagated(client: httpx.AsyncClient):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.get(
        "/cases/v1/headers", headers={"X-Request-ID": "req-123", "traceparent": traceparent}
    )

    seen = _headers(response.json())
    assert seen["x-request-id"] == ["req-123"]
    assert seen["traceparent"] == [traceparent]
    assert response.headers["x-request-id"] == "req-123"


async def test_request_id_is_made_when_the_caller_sent_none(client: httpx.AsyncClient):
    response = await client.get("/cases/v1/headers")

    forwarded = _headers(response.json())["x-request-id"]
    assert forwarded == [response.headers["x-request-id"]]


async def test_cases_requests_carry_the_client_address_but_not_a_spoofed_one(
    client: httpx.AsyncClient,
):
    response = await client.get(
        "/cases/v1/headers",
        headers={"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9", "User-Agent": "ua/1"},
    )

    seen = _headers(response.json())
    assert seen["x-forwarded-for"] == [CLIENT_IP]
    assert "x-real-ip" not in seen
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["gateway.test"]
    assert seen["user-agent"] == ["ua/1"]


async def test_intake_requests_carry_no_client_address_or_user_agent(client: httpx.AsyncClient):
    response = await client.post(
        "/intake/v1/headers",
        headers={
            "User-Agent": "Mozilla/5.0 (reporter's laptop)",
            "X-Forwarded-For": "192.0.2.1",
            "Forwarded": "for=192.0.2.1",
            "X-Real-IP": "192.0.2.1",
            "Referer": "https://campaign.example/reporter-page",
            "X-Request-ID": "anon-1",
        },
        json={"mode": "anonymous"},
    )

    seen = _headers(response.json())
    for name in ("x-forwarded-for", "forwarded", "x-real-ip", "user-agent", "referer"):
        assert name not in seen, name
    assert all(CLIENT_IP not in value for values in seen.values() for value in values)
    assert seen["x-request-id"] == ["anon-1"]


async def test_intake_request_without_user_agent_gets_none_added(client: httpx.AsyncClient):
    del client.headers["user-agent"]

    response = await client.get("/intake/v1/headers")

    assert "user-agent" not in _headers(response.json())


async def test_declared_body_over_the_limit_is_refused_with_413(routing: RoutingTransport):
    settings = EdgeSettings(max_body_bytes=1024)
    async with client_for(edge_app(settings, routing)) as client:
        response = await client.post("/cases/v1/digest", content=b"x" * 1025)

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/payload-too-large")


async def test_streamed_body_over_the_limit_is_refused_with_413(routing: RoutingTransport):
    settings = EdgeSettings(max_body_bytes=1024 * 1024)
    async with client_for(edge_app(settings, routing)) as client:
        response = await client.post(
            "/cases/v1/digest", content=stream(pattern_bytes(2 * 1024 * 1024))
        )

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_internal_service_routes_are_not_reachable_through_the_gateway(
    client: httpx.AsyncClient,
):
    response = await client.post("/cases/internal/events", json={})

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_stopped_service_is_a_502_problem():
    settings = EdgeSettings(cases_url=f"http://127.0.0.1:{_free_port()}")
    app = edge_app(settings, httpx.AsyncHTTPTransport())
    async with client_for(app) as client:
        response = await client.get("/cases/v1/cases", headers={"X-Request-ID": "down-1"})

    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "https://upstander.dev/problems/bad-gateway"
    assert problem["request_id"] == "down-1"
    assert "127.0.0.1" not in problem["detail"]


async def test_hanging_service_is_a_504_problem_and_answers_fast():
    connections: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # accept, read nothing useful, never reply

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = EdgeSettings(cases_url=f"http://127.0.0.1:{port}", http_read_timeout=0.5)
    try:
        async with client_for(edge_app(settings, httpx.AsyncHTTPTransport())) as client:
            started = time.monotonic()
            response = await client.get("/cases/v1/cases")
            elapsed = time.monotonic() - started
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()

    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "https://upstander.dev/problems/gateway-timeout"
    assert elapsed < 3


async def test_proxied_routes_stay_out_of_the_gateway_schema(
    settings: EdgeSettings, routing: RoutingTransport
):
    app = edge_app(settings, routing)

    assert not [p for p in app.openapi()["paths"] if p.startswith("/cases")]


def test_whitespace_around_a_header_value_is_not_forwarded() -> None:
    """`Authorization: Bearer ` (a script whose token variable is empty) once reached the
    upstream client as a value with a trailing space, which it refuses to send: a 502."""
    from starlette.requests import Request

    from upstander.gateway.proxy.router import upstream_request_headers

    request = Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/cases/v1/cases",
            "query_string": b"",
            "headers": [(b"authorization", b"Bearer "), (b"x-note", b"\t padded \t")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
    )
    headers = dict(upstream_request_headers(request, "cases"))
    assert headers["authorization"] == "Bearer"
    assert headers["x-note"] == "padded"


async def test_proxied_requests_skip_the_apps_layers_while_gateway_routes_under_a_prefix_win(
    settings: EdgeSettings, routing: RoutingTransport
):
    """ProxyLane: a forwarded request goes through the edge straight to the proxy; a gateway
    route under a service's prefix, and what the proxy does not take, still go through the
    app's layers and router."""
    app = edge_app(settings, routing)
    reached_app: list[str] = []

    class Recorder:
        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http":
                reached_app.append(scope["path"])
            await self.inner(scope, receive, send)

    app.add_middleware(Recorder)

    @app.get("/cases/v1/gateway-owned")
    async def gateway_owned() -> dict[str, str]:
        return {"served_by": "gateway"}

    # Where the gateway's own routes are: before the proxy's catch-alls.
    app.router.routes.insert(0, app.router.routes.pop())

    async with client_for(app) as client:
        proxied = await client.get("/training/v1/headers")
        owned = await client.get("/cases/v1/gateway-owned")
        shadowed_prefix_proxied = await client.get("/cases/v1/headers")
        not_taken = await client.request("TRACE", "/notify/v1/headers")

    assert proxied.status_code == 200 and "x-request-id" in proxied.headers
    assert owned.json() == {"served_by": "gateway"}
    # While a gateway route lives under /cases, the whole prefix goes through the router
    # (the gateway's own routes always win); it is still forwarded.
    assert shadowed_prefix_proxied.status_code == 200
    assert not_taken.status_code == 405
    assert reached_app == ["/cases/v1/gateway-owned", "/cases/v1/headers", "/notify/v1/headers"]
