"""How the proxy talks to a service: one small interface, two backends.

`AiohttpForwarder` is the proxy's client on the network: aiohttp's connection pool and its C
HTTP parser cost about a fifth of what httpx/httpcore's pool costs per request (that pool
checks every pooled connection's socket on each request; see docs/performance.md).
`HttpxForwarder` sends through an `httpx.AsyncClient`: what the proxy uses when the app was
made with a `transport=` (tests route services in-process that way).

Both give the same semantics: the caller's headers as given (no User-Agent, Accept,
Accept-Encoding or Content-Type added; Host is the service's), no cookie jar, no redirects
followed, bodies neither decoded nor decompressed, and failures as `UpstreamTimeout` (504),
`UpstreamUnreachable` or `UpstreamBroken` (502).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

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


def _length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# -- aiohttp ------------------------------------------------------------------------------------


class _ProxyRequest(aiohttp.ClientRequest):
    # aiohttp adds `Content-Length: 0` to a body-less request whose method is not one of these;
    # httpx (and so the proxy before) does that for POST, PUT and PATCH only, not for DELETE.
    GET_METHODS = aiohttp.ClientRequest.GET_METHODS | {"DELETE"}


def _header_value(value: str) -> str:
    """aiohttp writes header values as UTF-8; the proxy reads them as Latin-1 (the bytes as
    received). Re-decode so that the same bytes go out when they are UTF-8 (or ASCII)."""
    if value.isascii():
        return value
    raw = value.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value


class _AiohttpReply:
    __slots__ = ("_response", "headers", "length", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = [(name.lower(), value) for name, value in response.raw_headers]
        self.length = _length(self.headers)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._response.close()
            raise _mapped(exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._response.close()
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        # Back to the pool when the body was read to its end; closed otherwise.
        self._response.release()


def _mapped(exc: BaseException) -> UpstreamError:
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return UpstreamTimeout(type(exc).__name__)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnreachable(type(exc).__name__)
    return UpstreamBroken(type(exc).__name__)


class AiohttpForwarder:
    """A keep-alive HTTP/1.1 pool to one service. The session is made on first use inside the
    running event loop (and made anew if the loop changed: a session belongs to its loop)."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            # Waiting for a pooled connection, then opening one: httpx's pool + connect timeouts.
            connect=read_timeout + connect_timeout,
            sock_connect=connect_timeout,
            # Between two reads, as httpx's read timeout.
            sock_read=read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                keepalive_timeout=self.keepalive_expiry,
                ttl_dns_cache=300,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                # A proxy shared by every user must never keep one user's cookies
                # (GHSA-7vwr-g6pm-9hc8): cookies travel only as the forwarded headers.
                cookie_jar=aiohttp.DummyCookieJar(),
                # The service sees only what the caller sent.
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                auto_decompress=False,
                trust_env=False,
                request_class=_ProxyRequest,
                # h11 (httpx) allows a 16 KiB header block; aiohttp's default is 8 KiB a line.
                max_line_size=16384,
                max_field_size=16384,
            )
            self._session, self._loop = session, loop
        return session

    async def start(self) -> None:
        self._open()

    async def send(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: Body
    ) -> Reply:
        session = self._open()
        url = URL(self.base_url + target, encoded=True)  # path and query exactly as received
        try:
            response = await session.request(
                method,
                url,
                headers=[(name, _header_value(value)) for name, value in headers],
                data=body,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc) from exc
        return _AiohttpReply(response)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except RuntimeError:  # made in another (now closed) event loop
                pass


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
