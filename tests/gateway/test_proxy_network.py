"""The proxy over real sockets: the same promises as tests/gateway/test_proxy.py, kept by the
client the gateway uses on the network (its own HTTP/1.1 pool), with the services served by
uvicorn on loopback ports. test_proxy.py routes services in-process (an httpx transport); the
tests of it that need only a `client` run here again, against this module's fixtures."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from edge_support import CLIENT_IP, EdgeSettings, client_for, edge_app, fake_service, stream
from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

# Run again here, over the network: each takes the `client` fixture below.
from test_proxy import (  # noqa: F401
    test_cases_requests_carry_the_client_address_but_not_a_spoofed_one,
    test_hop_by_hop_response_headers_are_stripped_and_set_cookies_kept,
    test_intake_request_without_user_agent_gets_none_added,
    test_intake_requests_carry_no_client_address_or_user_agent,
    test_internal_service_routes_are_not_reachable_through_the_gateway,
    test_large_body_streams_upstream_and_back_byte_exact,
    test_large_download_streams_back_byte_exact,
    test_path_and_query_are_forwarded_unchanged,
    test_request_id_and_traceparent_are_propagated,
    test_request_id_is_made_when_the_caller_sent_none,
)

from upstander.gateway.proxy import install_proxy
from upstander.kit.errors import install_problem_handlers

PROBLEM = "application/problem+json"


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


async def _serve(
    app: object, keep_alive: float = 5.0
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    sock = _listening_socket()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=keep_alive,
        proxy_headers=False,  # scope["client"] is the gateway's end of the connection
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, sock.getsockname()[1]


class Witness:
    """A service that answers any method with what it was sent, and notes the client port of
    each request (one port per connection)."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.ports.append(scope["client"][1])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/big-header"):
            headers = [(b"x-big", b"v" * 12000), (b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        lines = [f"{scope['method']} {len(body)}".encode()]
        lines += [name + b": " + value for name, value in scope["headers"]]
        answer = b"\n".join(lines)
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


WITNESS = Witness()


@pytest.fixture(scope="module")
async def services() -> AsyncIterator[dict[str, int]]:
    """Fake intake, cases and training services and the witness as notify, on loopback ports."""
    running = []
    ports: dict[str, int] = {}
    for name in ("intake", "cases", "training", "notify"):
        app = WITNESS if name == "notify" else fake_service(name)
        server, task, port = await _serve(app)
        running.append((server, task))
        ports[name] = port
    yield ports
    for server, _ in running:
        server.should_exit = True
    await asyncio.gather(*(task for _, task in running))


def _settings(services: dict[str, int], **overrides: object) -> EdgeSettings:
    fields: dict[str, object] = {
        f"{name}_url": f"http://127.0.0.1:{services[name]}"
        for name in ("intake", "cases", "training", "notify")
    }
    fields.update(overrides)
    return EdgeSettings(**fields)  # type: ignore[arg-type]


@pytest.fixture
def settings(services: dict[str, int]) -> EdgeSettings:
    return _settings(services)


@pytest.fixture
async def client(settings: EdgeSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = edge_app(settings, None)
    async with client_for(app) as client:
        yield client
    await app.state.upstreams.aclose()


def _lines(response: httpx.Response) -> list[str]:
    return response.text.split("\n")


async def test_the_network_client_is_the_one_in_use(client: httpx.AsyncClient):
    from upstander.gateway.proxy.client import H1Forwarder

    await client.get("/cases/v1/headers")
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    pool = transport.app.state.upstreams  # type: ignore[attr-defined]
    assert isinstance(pool.forwarder("cases"), H1Forwarder)


async def test_the_service_host_is_sent_and_internal_headers_are_not(
    client: httpx.AsyncClient, services: dict[str, int]
):
    for name in list(client.headers):  # the test client's own defaults (Accept, User-Agent...)
        del client.headers[name]
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
            "Authorization": "Bearer abc",
        },
    )

    seen: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name, []).append(value)
    for name in ("x-client-hop", "keep-alive", "proxy-authorization", "te", "upgrade"):
        assert name not in seen
    assert not [name for name in seen if name.startswith("x-upstander-")]
    assert seen["host"] == [f"127.0.0.1:{services['cases']}"]
    assert seen["authorization"] == ["Bearer abc"]
    # Nothing the caller did not send: no client defaults added on the way.
    added = ("accept", "accept-encoding", "user-agent", "cookie", "content-type", "content-length")
    for name in added:
        assert name not in seen, name


async def test_bodies_are_framed_as_before(client: httpx.AsyncClient):
    """Content-Length: 0 for a body-less POST/PUT/PATCH, none for GET or DELETE; a body keeps
    its length; no Content-Type is made up."""
    expected = {"GET": None, "DELETE": None, "POST": "0", "PUT": "0", "PATCH": "0"}
    for method, length in expected.items():
        lines = _lines(await client.request(method, "/notify/v1/witness"))
        assert lines[0] == f"{method} 0"
        lengths = [line.split(": ")[1] for line in lines if line.startswith("content-length:")]
        assert lengths == ([] if length is None else [length]), method

    lines = _lines(await client.post("/notify/v1/witness", content=b"abc"))
    assert lines[0] == "POST 3"
    assert "content-length: 3" in lines
    assert not [line for line in lines if line.startswith("content-type:")]


async def test_head_is_answered_without_a_body(client: httpx.AsyncClient):
    response = await client.head("/notify/v1/witness")

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


async def test_connections_to_a_service_are_kept_alive(client: httpx.AsyncClient):
    WITNESS.ports.clear()
    for _ in range(20):
        assert (await client.get("/notify/v1/witness")).status_code == 200

    assert len(WITNESS.ports) == 20
    assert len(set(WITNESS.ports)) == 1


async def test_a_utf8_header_value_is_forwarded_byte_for_byte(client: httpx.AsyncClient):
    value = "Zoë".encode()
    response = await client.get("/notify/v1/witness", headers=[(b"x-name", value)])

    assert response.status_code == 200
    assert b"x-name: " + value in response.content.split(b"\n")


async def test_a_large_response_header_is_relayed(client: httpx.AsyncClient):
    response = await client.get("/notify/v1/big-header")

    assert response.status_code == 200
    assert response.headers["x-big"] == "v" * 12000


async def test_upstream_cookies_are_never_replayed_on_other_requests(settings: EdgeSettings):
    app = edge_app(settings, None)
    async with client_for(app) as first:
        assert (await first.get("/cases/v1/cookies")).status_code == 200
    async with client_for(app, ip="198.51.100.9") as second:
        response = await second.get("/cases/v1/headers")
    await app.state.upstreams.aclose()

    assert "cookie" not in [name for name, _ in response.json()["headers"]]


async def test_declared_body_over_the_limit_is_refused_with_413(services: dict[str, int]):
    app = edge_app(_settings(services, max_body_bytes=1024), None)
    async with client_for(app) as client:
        response = await client.post("/cases/v1/digest", content=b"x" * 1025)
    await app.state.upstreams.aclose()

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_streamed_body_over_the_limit_is_refused_with_413(services: dict[str, int]):
    # Past the 1 MiB read whole, the body streams upstream until it passes the limit.
    app = edge_app(_settings(services, max_body_bytes=1536 * 1024), None)
    chunks = [b"x" * 65536] * 32  # 2 MiB, chunked
    async with client_for(app) as client:
        response = await client.post("/cases/v1/digest", content=stream(chunks))
        after = await client.post("/cases/v1/digest", content=stream([b"y" * 4096] * 4))
    await app.state.upstreams.aclose()

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert after.status_code == 200
    assert after.json() == {"sha256": hashlib.sha256(b"y" * 16384).hexdigest(), "size": 16384}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_stopped_service_is_a_502_problem(services: dict[str, int]):
    settings = _settings(services, cases_url=f"http://127.0.0.1:{_free_port()}")
    app = edge_app(settings, None)
    async with client_for(app) as client:
        response = await client.get("/cases/v1/cases", headers={"X-Request-ID": "down-1"})
    await app.state.upstreams.aclose()

    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "https://upstander.dev/problems/bad-gateway"
    assert problem["request_id"] == "down-1"
    assert "127.0.0.1" not in problem["detail"]


async def test_hanging_service_is_a_504_problem_and_answers_fast(services: dict[str, int]):
    connections: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = _settings(services, http_read_timeout=0.5, cases_url=f"http://127.0.0.1:{port}")
    app = edge_app(settings, None)
    try:
        async with client_for(app) as client:
            started = time.monotonic()
            response = await client.get("/cases/v1/cases")
            elapsed = time.monotonic() - started
    finally:
        await app.state.upstreams.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()

    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "https://upstander.dev/problems/gateway-timeout"
    assert elapsed < 3


async def test_a_service_that_closes_without_answering_is_a_502_problem(
    services: dict[str, int],
):
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = _settings(services, cases_url=f"http://127.0.0.1:{port}")
    app = edge_app(settings, None)
    try:
        async with client_for(app) as client:
            response = await client.post("/cases/v1/cases", json={})
    finally:
        await app.state.upstreams.aclose()
        server.close()
        await server.wait_closed()

    assert response.status_code == 502
    assert response.json()["type"] == "https://upstander.dev/problems/bad-gateway"
    assert CLIENT_IP not in response.text


async def test_a_gateway_route_under_a_service_prefix_still_wins(settings: EdgeSettings):
    """The proxy's routes are tried first, but give way to the gateway's own."""
    app = FastAPI()
    install_problem_handlers(app)
    router = APIRouter()

    @router.get("/cases/v1/local")
    async def local() -> dict[str, str]:
        return {"where": "gateway"}

    app.include_router(router)
    install_proxy(app, settings)
    async with client_for(app) as client:
        answered_here = await client.get("/cases/v1/local")
        proxied = await client.get("/cases/v1/headers")
    await app.state.upstreams.aclose()

    assert answered_here.json() == {"where": "gateway"}
    assert proxied.status_code == 200
    assert proxied.json()["path"] == "/cases/v1/headers"


async def test_a_connection_the_service_closed_while_idle_is_not_used_again(
    services: dict[str, int],
):
    witness = Witness()
    server, task, port = await _serve(witness, keep_alive=0.2)
    app = edge_app(_settings(services, notify_url=f"http://127.0.0.1:{port}"), None)
    try:
        async with client_for(app) as client:
            first = await client.post("/notify/v1/witness", content=b"one")
            await asyncio.sleep(0.6)  # the service has closed the idle connection by now
            second = await client.post("/notify/v1/witness", content=b"two")
    finally:
        await app.state.upstreams.aclose()
        server.should_exit = True
        await task

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(set(witness.ports)) == 2


async def test_the_upstream_clients_load_the_ca_bundle_once(
    settings: EdgeSettings, monkeypatch: pytest.MonkeyPatch
):
    """Every HTTP client of the process shares one TLS context (`kit.http.tls_context`): a
    client building its own loads the whole CA bundle again (0.8 MB each)."""
    loads: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        load(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    app = edge_app(settings, None)
    pool = app.state.upstreams
    clients = [pool.client(name) for name in ("intake", "cases", "training", "notify")]
    try:
        assert len({id(client) for client in clients}) == 4
        assert len(loads) <= 1  # the shared context, unless an earlier test made it
    finally:
        await pool.aclose()
