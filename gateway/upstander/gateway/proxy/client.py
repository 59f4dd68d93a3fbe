"""How the proxy talks to a service: one small interface, two backends.

`H1Forwarder` is the proxy's client on the network: HTTP/1.1 keep-alive connections on the
event loop's transports, answers parsed by httptools. It costs less per request than
httpx/httpcore's pool (which checks every pooled connection's socket on each request) and
than aiohttp's, which it replaced: aiohttp's modules were 7 MB of the gateway's memory (see
docs/performance.md). `HttpxForwarder` sends through an `httpx.AsyncClient`: what the proxy
uses when the app was made with a `transport=` (tests route services in-process that way).

Both give the same semantics: the caller's headers as given (no User-Agent, Accept,
Accept-Encoding or Content-Type added; Host is the service's), no cookie jar, no redirects
followed, bodies neither decoded nor decompressed, and failures as `UpstreamTimeout` (504),
`UpstreamUnreachable` or `UpstreamBroken` (502).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from typing import AnyStr, Protocol
from urllib.parse import urlsplit

import httptools
import httpx

from upstander.kit.http import tls_context

# What a request body can be: whole, a stream, or none.
Body = bytes | AsyncIterable[bytes] | None


class UpstreamError(Exception):
    """The service could not be asked or gave no usable answer."""


class UpstreamTimeout(UpstreamError):
    """Connecting, waiting for a pooled connection or reading took longer than allowed."""


class UpstreamUnreachable(UpstreamError):
    """No connection could be opened (refused, no route, no such host)."""


class UpstreamBroken(UpstreamError):
    """A connection was opened but the exchange failed (closed early, malformed answer)."""


class Reply(Protocol):
    """A service's answer, headers read, body not yet."""

    status: int
    # As sent, repeated headers kept, names lowercased.
    headers: list[tuple[bytes, bytes]]
    # Content-Length when the service sent one, else None.
    length: int | None

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Forwarder(Protocol):
    async def send(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: Body
    ) -> Reply: ...

    async def aclose(self) -> None: ...


_CONTENT_LENGTH = (b"content-length", "content-length")


def _length(headers: Iterable[tuple[AnyStr, AnyStr]]) -> int | None:
    """The Content-Length among `headers` (bytes or str, names in any case); None when there
    is none or it is not a number."""
    for name, value in headers:
        if name.lower() in _CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None
    return None


# -- the network: HTTP/1.1 on asyncio, parsed by httptools ---------------------------------------

# A request without a body still says `Content-Length: 0` unless its method never has one (as
# httpx does, and the proxy did before: for POST, PUT, PATCH and the like, not GET or DELETE).
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "CONNECT"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Reading pauses while this much of an answer waits for the caller to take it.
_HIGH_WATER = 256 * 1024
# httptools allows 80 KiB of header block by default; h11 (httpx) 16 KiB a block, aiohttp
# 8 KiB a line. A bigger answer head is a broken answer, not a reason to buffer without end.
_MAX_HEAD_BYTES = 64 * 1024


class _Connection(asyncio.Protocol):
    """One keep-alive connection to the service, one exchange at a time. The answer's head and
    body arrive through httptools' callbacks; `_Reply` takes them from here."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self.received = False  # any byte of the current exchange's answer
        self._parser: httptools.HttpResponseParser | None = None
        self._head_bytes = 0
        self._reply: _Reply | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reply, parser = self._reply, self._parser
        if reply is None or parser is None:  # bytes nobody asked for: the connection is spoilt
            self.close()
            return
        self.received = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            reply.fail(UpstreamBroken(type(exc).__name__))
            self.close()
            return
        if not reply.head_done and not reply.done:
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD_BYTES:
                reply.fail(UpstreamBroken("HeadTooLarge"))
                self.close()

    def eof_received(self) -> bool:
        reply = self._reply
        if reply is not None and reply.head_done and not reply.done and reply.until_close:
            reply.finish(reusable=False)  # an answer framed by the end of the connection
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reply, self._reply = self._reply, None
        if reply is not None and not reply.done:
            reply.fail(UpstreamBroken("ConnectionClosed"))
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._reply is not None:
            self._reply.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        reply, parser = self._reply, self._parser
        if reply is not None and parser is not None:
            reply.head(parser.get_status_code(), parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self._reply is not None:
            self._reply.feed(body)

    def on_message_complete(self) -> None:
        reply = self._reply
        if reply is None:
            return
        if reply.informational:  # a 100 Continue (or the like) ended: the answer follows
            reply.informational = False
            return
        reply.finish(reusable=True)

    # -- use

    def begin(self, reply: _Reply) -> None:
        """Expect the answer to the request about to be written."""
        self._reply = reply
        self._parser = httptools.HttpResponseParser(self)
        self._head_bytes = 0
        self.received = False

    def end(self) -> None:
        self._reply = None
        self._parser = None

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamBroken("ConnectionClosed")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamBroken("ConnectionClosed")
        if self._write_paused:
            self._drain = self.loop.create_future()
            await self._drain
            if self.closed:
                raise UpstreamBroken("ConnectionClosed")

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class _Reply:
    """The answer on one connection: its head, then its body as it arrives."""

    __slots__ = (
        "_body",
        "_buffered",
        "_connection",
        "_error",
        "_forwarder",
        "_head_waiter",
        "_paused",
        "_reusable",
        "_waiter",
        "done",
        "head_done",
        "head_only",
        "headers",
        "informational",
        "keep_alive",
        "length",
        "released",
        "status",
        "until_close",
    )

    def __init__(self, forwarder: H1Forwarder, connection: _Connection, head_only: bool) -> None:
        self._forwarder = forwarder
        self._connection = connection
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._head_waiter: asyncio.Future[None] = connection.loop.create_future()
        self._reusable = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.keep_alive = False
        self.head_done = False
        self.informational = False
        self.done = False
        self.released = False
        # A HEAD answer has no body, whatever its Content-Length says (httptools cannot know).
        self.head_only = head_only
        self.until_close = False

    # -- fed by the connection

    def head(self, status: int, keep_alive: bool) -> None:
        if 100 <= status < 200 and status != 101:
            self.informational = True  # not the answer: forget its headers and wait on
            self.headers = []
            return
        self.status = status
        self.keep_alive = keep_alive
        self.length = _length(self.headers)
        self.head_done = True
        chunked = any(
            name == b"transfer-encoding" and b"chunked" in value.lower()
            for name, value in self.headers
        )
        no_body = self.head_only or status in (204, 304, 101)
        self.until_close = not no_body and self.length is None and not chunked
        if not self._head_waiter.done():
            self._head_waiter.set_result(None)
        if self.head_only:
            self.finish(reusable=True)

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._paused:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def finish(self, *, reusable: bool) -> None:
        if self.done:
            return
        self.done = True
        self._reusable = reusable and self.keep_alive and not self.until_close
        self._connection.end()
        self._wake()

    def fail(self, error: UpstreamError) -> None:
        if self.done:
            return
        self.done = True
        self._error = error
        if not self._head_waiter.done():
            self._head_waiter.set_result(None)
        self._wake()

    def forbid_reuse(self) -> None:
        self.keep_alive = False
        self._reusable = False

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- read by the proxy

    async def wait_head(self, seconds: float | None) -> None:
        try:
            async with asyncio.timeout(seconds):
                await asyncio.shield(self._head_waiter)
        except TimeoutError:
            raise UpstreamTimeout("ReadTimeout") from None
        if self._error is not None and not self.head_done:
            raise self._error

    async def _next(self) -> bytes | None:
        """The next piece of the body; None at its end."""
        while not self._body:
            if self._error is not None:
                raise self._error
            if self.done:
                return None
            self._waiter = self._connection.loop.create_future()
            try:
                async with asyncio.timeout(self._forwarder.read_timeout):
                    await self._waiter
            except TimeoutError:
                self._connection.close()
                raise UpstreamTimeout("ReadTimeout") from None
        data = self._body.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= _HIGH_WATER // 4:
            self._paused = False
            self._connection.resume_reading()
        return data

    async def read(self) -> bytes:
        parts = []
        while (data := await self._next()) is not None:
            parts.append(data)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (data := await self._next()) is not None:
            if data:
                yield data

    async def aclose(self) -> None:
        # Back to the pool when the answer was read to its end; closed otherwise.
        if self.released:
            return
        self.released = True
        reusable = self.done and self._error is None and self._reusable and not self._body
        self._forwarder._release(self._connection, reusable=reusable)


class H1Forwarder:
    """The proxy's client on the network: a keep-alive HTTP/1.1 pool to one service, on the
    event loop's own transports, answers parsed by httptools (the C parser uvicorn serves
    with, so already in memory). It replaced aiohttp's pool: as fast, and 7 MB less of the
    gateway's memory (docs/performance.md).

    Connections are made on first use inside the running event loop (and dropped if the loop
    changed: a connection belongs to its loop). At most `max_connections` are open or being
    opened, idle ones included; a request waits for one at most `connect_timeout +
    read_timeout` in all. An idle connection is kept `keepalive_expiry` seconds; one the
    service closed is never used again, and an idempotent request whose reused connection turns
    out closed before any answer is sent once more on a new one."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        keepalive_expiry: float = 30.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default_port = parts.port is None or parts.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (host if default_port else f"{host}:{self.port}").encode("idna")
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Connection] = []
        self._open = 0  # open or being opened
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop: the old one's connections cannot be used
            self._loop, self._idle, self._open = loop, [], 0
            self._waiters = collections.deque()
        return loop

    async def start(self) -> None:
        self._bind()

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    self.host,
                    self.port,
                    ssl=tls_context() if self.tls else None,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("ConnectTimeout") from None
        except OSError as exc:  # refused, unreachable, no such host, TLS refused
            raise UpstreamUnreachable(type(exc).__name__) from exc
        return connection

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        while True:
            now = loop.time()
            while self._idle:
                connection = self._idle.pop()
                if connection.closed or now - connection.idle_since > self.keepalive_expiry:
                    self._discard(connection)
                    continue
                connection.reused = True
                return connection
            if self._open < self.max_connections:
                self._open += 1
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        return await self._connect(loop)
                except BaseException as error:  # the place it held is free again
                    self._open -= 1
                    self._wake_one()
                    if isinstance(error, TimeoutError):
                        raise UpstreamTimeout("PoolTimeout") from None
                    raise
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await waiter
            except TimeoutError:
                raise UpstreamTimeout("PoolTimeout") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        if connection.loop is self._loop:
            self._open = max(0, self._open - 1)
        self._wake_one()

    def _release(self, connection: _Connection, *, reusable: bool) -> None:
        if connection.loop is not self._loop:
            connection.close()
            return
        if reusable and not connection.closed:
            connection.idle_since = connection.loop.time()
            connection.reused = False
            self._idle.append(connection)
            self._wake_one()
        else:
            self._discard(connection)

    def _head(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], framing: bytes
    ) -> bytes:
        lines = [
            f"{method} {self.prefix}{target} HTTP/1.1\r\n".encode("latin-1"),
            b"host: " + self.host_header + b"\r\n",
        ]
        for name, value in headers:
            if name.lower() != "content-length" or not framing:
                lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(framing)
        lines.append(b"\r\n")
        return b"".join(lines)

    async def send(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: Body
    ) -> Reply:
        loop = self._bind()
        deadline = loop.time() + self.connect_timeout + self.read_timeout
        # Sent again on a new connection when a kept-alive one turns out closed before any of
        # the answer came (the service closed it as the request went out), as aiohttp did:
        # for a method that may be repeated, with a body that can be sent again.
        replayable = method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        while True:
            connection = await self._acquire(loop, deadline)
            try:
                return await self._exchange(connection, method, target, headers, body)
            except UpstreamBroken:
                if not (connection.reused and not connection.received and replayable):
                    raise

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: Body,
    ) -> Reply:
        reply = _Reply(self, connection, head_only=method == "HEAD")
        connection.begin(reply)
        writer: asyncio.Task[None] | None = None
        try:
            if body is None or isinstance(body, bytes):
                if body:
                    framing = b"content-length: %d\r\n" % len(body)
                elif method in _NO_BODY_METHODS:
                    framing = b""
                else:
                    framing = b"content-length: 0\r\n"
                connection.write(self._head(method, target, headers, framing) + (body or b""))
            else:
                given = _length(headers)
                framing = b"" if given is not None else b"transfer-encoding: chunked\r\n"
                connection.write(self._head(method, target, headers, framing))
                writer = asyncio.ensure_future(self._write_body(connection, body, given is None))
                writer.add_done_callback(_retrieved)
            await self._await_head(reply, writer)
        except BaseException:
            if writer is not None and not writer.done():
                writer.cancel()
            connection.end()
            reply.released = True
            self._discard(connection)
            raise
        if writer is not None and not writer.done():
            # The service answered before the whole body went: the connection cannot be reused.
            reply.forbid_reuse()
            writer.cancel()
        return reply

    async def _await_head(self, reply: _Reply, writer: asyncio.Task[None] | None) -> None:
        """The answer's head. With a streamed body, the read timeout starts once the body is
        sent (as it did with httpx); an answer that comes before that is taken."""
        if writer is not None:
            head = asyncio.ensure_future(reply.wait_head(None))
            try:
                await asyncio.wait({head, writer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                head.cancel()
            if writer.done() and not reply.head_done:
                error = writer.exception()
                if error is not None:
                    raise error  # the body's own (too large), or the service's (timeout, closed)
        await reply.wait_head(self.read_timeout)

    async def _write_body(
        self, connection: _Connection, body: AsyncIterable[bytes], chunked: bool
    ) -> None:
        async for chunk in body:
            if not chunk:
                continue
            connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            try:
                async with asyncio.timeout(self.read_timeout):  # a service that stopped reading
                    await connection.drain()
            except TimeoutError:
                raise UpstreamTimeout("WriteTimeout") from None
        if chunked:
            connection.write(b"0\r\n\r\n")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                connection.close()
            except RuntimeError:  # made in another (now closed) event loop
                pass
        self._open = 0
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.cancel()


def _retrieved(task: asyncio.Task[None]) -> None:
    """A body writer's error is the exchange's to raise, or no one's once the service has
    answered: never asyncio's "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()


# -- httpx (transport injection) ---------------------------------------------------------------


class _HttpxReply:
    __slots__ = ("_response", "headers", "length", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = [(name.lower(), value) for name, value in response.headers.raw]
        self.length = _length(self.headers)

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            raise _mapped_httpx(exc) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


def _mapped_httpx(exc: httpx.TransportError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(type(exc).__name__)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnreachable(type(exc).__name__)
    return UpstreamBroken(type(exc).__name__)


class HttpxForwarder:
    """Sends through an httpx client (one made by `UpstreamPool` around a given transport)."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base = httpx.URL(base_url)
        raw = self.base.raw_path
        self.prefix = raw.rstrip(b"/") if raw not in (b"", b"/") else b""

    async def send(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: Body
    ) -> Reply:
        request = self.client.build_request(
            method,
            self.base.copy_with(raw_path=self.prefix + target.encode("latin-1")),
            headers=list(headers),
            content=body,
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _mapped_httpx(exc) from exc
        return _HttpxReply(response)

    async def aclose(self) -> None:
        return None  # the client belongs to the pool
