"""The proxy's HTTP/1.1 client (`H1Forwarder`) against hand-written servers on loopback: what
uvicorn never does but a service or the network may — an informational answer first, a body
framed by the end of the connection, a kept-alive connection closed as the request goes out,
a service answering before it has read the upload, a pool with no connection free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from upstander.gateway.proxy.client import (
    H1Forwarder,
    UpstreamBroken,
    UpstreamTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def _server(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _forwarder(port: int, **overrides: float) -> H1Forwarder:
    options = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_connections": 4, **overrides}
    return H1Forwarder(
        f"http://127.0.0.1:{port}",
        connect_timeout=options["connect_timeout"],
        read_timeout=options["read_timeout"],
        max_connections=int(options["max_connections"]),
    )


async def _upload(chunks: int, pause: float) -> AsyncIterator[bytes]:
    """A slow upload of `chunks` times 64 KiB."""
    for _ in range(chunks):
        yield b"u" * 65536
        await asyncio.sleep(pause)


async def _closing(server: asyncio.Server, forwarder: H1Forwarder) -> None:
    await forwarder.aclose()
    server.close()
    await server.wait_closed()


async def test_an_informational_answer_is_skipped_for_the_answer_after_it() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\nx-a: 1\r\n\r\nok")
        await writer.drain()
        await reader.read()  # until the client closes

    server, port = await _server(handler)
    forwarder = _forwarder(port)
    try:
        reply = await forwarder.send("POST", "/x", [], b"{}")
        body = await reply.read()
        await reply.aclose()
    finally:
        await _closing(server, forwarder)

    assert (reply.status, body, reply.headers) == (
        201,
        b"ok",
        [(b"content-length", b"2"), (b"x-a", b"1")],
    )


async def test_a_body_framed_by_the_end_of_the_connection_is_read_whole_and_not_reused() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + b"z" * 100_000)
        await writer.drain()
        writer.close()

    server, port = await _server(handler)
    forwarder = _forwarder(port)
    try:
        bodies = []
        for _ in range(2):
            reply = await forwarder.send("GET", "/", [], None)
            bodies.append(await reply.read())
            await reply.aclose()
    finally:
        await _closing(server, forwarder)

    assert bodies == [b"z" * 100_000] * 2
    assert connections == 2


async def _keep_alive_once(
    requests: list[bytes],
) -> Handler:
    """Answers the first request of each connection and keeps it open; on the second request
    of a connection, closes it without an answer (as a service closing an idle connection
    just as a request arrives)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await _head(reader))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        try:
            requests.append(await _head(reader))
        except asyncio.IncompleteReadError:
            return
        writer.close()

    return handler


async def test_an_idempotent_request_is_sent_again_when_a_kept_alive_connection_was_closed() -> (
    None
):
    requests: list[bytes] = []
    server, port = await _server(await _keep_alive_once(requests))
    forwarder = _forwarder(port)
    try:
        statuses = []
        for _ in range(2):
            reply = await forwarder.send("GET", "/again", [], None)
            await reply.read()
            await reply.aclose()
            statuses.append(reply.status)
    finally:
        await _closing(server, forwarder)

    assert statuses == [200, 200]
    # The first, the second on the kept-alive connection (closed unanswered), the second again.
    assert [r.split(b"\r\n")[0] for r in requests] == [b"GET /again HTTP/1.1"] * 3


async def test_a_post_is_not_sent_twice() -> None:
    requests: list[bytes] = []
    server, port = await _server(await _keep_alive_once(requests))
    forwarder = _forwarder(port)
    try:
        reply = await forwarder.send("POST", "/once", [], b"a")
        await reply.read()
        await reply.aclose()
        with pytest.raises(UpstreamBroken):
            await forwarder.send("POST", "/once", [], b"b")
    finally:
        await _closing(server, forwarder)

    assert len(requests) == 2


@pytest.mark.parametrize("linger", [0.5, 0.0], ids=["then-lingers", "then-hangs-up"])
async def test_an_answer_before_the_upload_ends_is_taken_and_the_connection_not_reused(
    linger: float,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        body = b'{"title": "too large"}'
        writer.write(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
        )
        await writer.drain()
        await asyncio.sleep(linger)
        writer.close()

    server, port = await _server(handler)
    forwarder = _forwarder(port, read_timeout=5.0)
    try:
        reply = await asyncio.wait_for(forwarder.send("PUT", "/up", [], _upload(1000, 0.005)), 5)
        body = await reply.read()
        await reply.aclose()
        assert forwarder._idle == []  # not kept: the upload was cut short
    finally:
        await _closing(server, forwarder)

    assert (reply.status, body) == (413, b'{"title": "too large"}')


async def test_a_request_waits_for_a_free_connection_and_gives_up_after_the_timeouts() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await _head(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    server, port = await _server(handler)
    forwarder = _forwarder(port, max_connections=1, connect_timeout=0.1, read_timeout=0.2)
    loop = asyncio.get_running_loop()
    try:
        first = await forwarder.send("GET", "/1", [], None)  # holds the one connection
        started = loop.time()
        with pytest.raises(UpstreamTimeout):
            await forwarder.send("GET", "/2", [], None)
        waited = loop.time() - started
        waiting = asyncio.ensure_future(forwarder.send("GET", "/3", [], None))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await first.read() == b"ok"
        await first.aclose()  # the connection goes back: the waiting request takes it
        third = await waiting
        assert await third.read() == b"ok"
        await third.aclose()
    finally:
        await _closing(server, forwarder)

    assert 0.25 <= waited < 1.0  # connect + read timeouts: 0.3 s
