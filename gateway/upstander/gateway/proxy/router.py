"""The reverse proxy from the gateway to the services: streamed both ways, hop-by-hop headers
stripped, request ids propagated, anonymous intake traffic forwarded without client traces.

A request body is read before the service is asked when it is small (up to
`proxy_buffer_body_bytes`, which every report and message is): a client that sends half a body
and stalls then holds only its own connection to the gateway, never one of the pool's
connections to a service, until the kit's body deadline cuts it (408). Larger bodies
(attachments, evidence) are streamed, and at most `proxy_max_streamed_uploads` of them per
service at once, so slow uploads can never take the whole pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from upstander.gateway.proxy.upstreams import SERVICES, UpstreamPool, get_upstreams
from upstander.kit.errors import problem_response

log = logging.getLogger("upstander.gateway.proxy")

DEFAULT_MAX_BODY_BYTES = 25 * 1024 * 1024
DEFAULT_BUFFER_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_STREAMED_UPLOADS = 32
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
# Client-address headers: the gateway writes its own X-Forwarded-For; it never relays these.
CLIENT_ADDRESS_HEADERS = frozenset(
    {
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-cluster-client-ip",
        "x-forwarded",
        "forwarded-for",
    }
)
# Dropped on anonymous routes on top of the addresses: what identifies a browser or a page.
ANONYMOUS_DROPPED = frozenset({"user-agent", "referer"})
INTERNAL_PREFIX = "x-upstander-"
ANONYMOUS_SERVICES = frozenset({"intake"})


class _BodyTooLarge(Exception):
    pass


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _strip(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop hop-by-hop headers, the ones `Connection` names, and Host."""
    named = _connection_tokens(headers)
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_BY_HOP and name.lower() not in named
    ]


def upstream_request_headers(
    request: Request, service: str, *, trust_forwarded: bool = False
) -> list[tuple[str, str]]:
    """The headers the service receives for `request`."""
    # Whitespace around a field value is not part of it (RFC 9110 §5.5); the server keeps a
    # trailing space (`Authorization: Bearer `) that the upstream client would refuse to send.
    incoming = [
        (k.decode("latin-1"), v.decode("latin-1").strip(" \t")) for k, v in request.scope["headers"]
    ]
    anonymous = service in ANONYMOUS_SERVICES
    prior_forwarded_for = [v for k, v in incoming if k.lower() == "x-forwarded-for"]
    headers = [
        (name, value)
        for name, value in _strip(incoming)
        if not name.lower().startswith(INTERNAL_PREFIX)
        and name.lower() not in CLIENT_ADDRESS_HEADERS
        and name.lower() not in ("x-forwarded-proto", "x-forwarded-host", "x-request-id")
        and not (anonymous and name.lower() in ANONYMOUS_DROPPED)
    ]
    request_id = getattr(request.state, "request_id", None) or request.headers.get("x-request-id")
    if request_id:
        headers.append(("x-request-id", request_id))
    host = request.headers.get("host")
    if host:
        headers.append(("x-forwarded-host", host))
    headers.append(("x-forwarded-proto", request.url.scheme))
    if not anonymous:
        client_ip = request.client.host if request.client else None
        chain = [*prior_forwarded_for] if trust_forwarded else []
        if client_ip:
            chain.append(client_ip)
        if chain:
            headers.append(("x-forwarded-for", ", ".join(chain)))
    return headers


# The gateway's own server adds these; the service's copies would be duplicates.
SERVER_OWNED = frozenset({"date", "server"})


def downstream_response_headers(upstream: httpx.Response) -> list[tuple[bytes, bytes]]:
    """The service's headers as the caller receives them; repeated headers (Set-Cookie) kept."""
    items = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in SERVER_OWNED]
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _strip(items)]


class _CountingBody:
    """Streams the request body upstream, refusing to pass more than `limit` bytes. `head` is
    what was already read from `chunks` (the request's body stream) before streaming began."""

    def __init__(
        self, chunks: AsyncIterator[bytes], limit: int, head: bytes = b"", received: int = 0
    ) -> None:
        self.chunks = chunks
        self.limit = limit
        self.head = head
        self.received = received
        self.exceeded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            yield self.head
        async for chunk in self.chunks:
            self.received += len(chunk)
            if self.received > self.limit:
                self.exceeded = True
                raise _BodyTooLarge
            if chunk:
                yield chunk


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


def _upstream_url(base_url: str, request: Request) -> httpx.URL:
    base = httpx.URL(base_url)
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    prefix = base.raw_path.rstrip(b"/") if base.raw_path not in (b"", b"/") else b""
    query: bytes = request.scope.get("query_string", b"")
    target = prefix + raw_path + (b"?" + query if query else b"")
    return base.copy_with(raw_path=target)


class Proxy:
    """The endpoint behind `/{service}/...` for every proxied service."""

    def __init__(self, pool: UpstreamPool, settings: Any) -> None:
        self.pool = pool
        self.max_body_bytes = int(getattr(settings, "max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        self.trust_forwarded = bool(getattr(settings, "trust_forwarded_headers", False))
        self.block_internal = bool(getattr(settings, "proxy_block_internal", True))
        self.buffer_body_bytes = int(
            getattr(settings, "proxy_buffer_body_bytes", DEFAULT_BUFFER_BODY_BYTES)
        )
        self.max_streamed_uploads = int(
            getattr(settings, "proxy_max_streamed_uploads", DEFAULT_MAX_STREAMED_UPLOADS)
        )
        self.streamed_uploads: dict[str, int] = {}

    def too_large(self, request: Request) -> Response:
        return problem_response(
            413, f"The body exceeds {self.max_body_bytes} bytes.", request=request
        )

    async def _read_body(
        self, request: Request, declared: int | None
    ) -> bytes | _CountingBody | None:
        """The whole body when it is small (read here, so a slow client keeps no service
        connection busy); else a stream of it that starts with what was read; None when it
        is over the limit."""
        chunks = request.stream().__aiter__()
        if declared is not None and declared > self.buffer_body_bytes:
            return _CountingBody(chunks, self.max_body_bytes)
        head: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            head.append(chunk)
            if size > self.buffer_body_bytes:
                # Bigger than declared, or chunked: stream the rest behind what was read.
                return _CountingBody(chunks, self.max_body_bytes, b"".join(head), size)
        return b"".join(head)

    def _take_upload_slot(self, service: str) -> bool:
        held = self.streamed_uploads.get(service, 0)
        if held >= self.max_streamed_uploads:
            return False
        self.streamed_uploads[service] = held + 1
        return True

    def _free_upload_slot(self, service: str) -> None:
        self.streamed_uploads[service] = max(0, self.streamed_uploads.get(service, 0) - 1)

    @staticmethod
    def uploads_busy(service: str, request: Request) -> Response:
        return problem_response(
            503,
            f"Too many uploads to the {service} service right now; retry shortly.",
            request=request,
            headers={"Retry-After": "5", "Connection": "close"},
        )

    async def handle(self, request: Request) -> Response:
        service = request.scope["path"].split("/", 2)[1]
        if self.block_internal and request.scope["path"].startswith(f"/{service}/internal/"):
            # Service-to-service routes (event delivery) are reached directly, never from outside.
            return problem_response(404, "No such resource.", request=request)
        declared_header = request.headers.get("content-length")
        declared: int | None = None
        if declared_header is not None:
            try:
                declared = int(declared_header)
            except ValueError:
                return problem_response(400, "Bad Content-Length.", request=request)
            if declared > self.max_body_bytes:
                return self.too_large(request)

        content = await self._read_body(request, declared) if _has_body(request) else b""
        if content is None:
            return self.too_large(request)
        if isinstance(content, _CountingBody):
            if not self._take_upload_slot(service):
                return self.uploads_busy(service, request)
            try:
                return await self._forward(request, service, content)
            finally:
                self._free_upload_slot(service)
        return await self._forward(request, service, content or None)

    async def _forward(
        self, request: Request, service: str, body: bytes | _CountingBody | None
    ) -> Response:
        client = self.pool.client(service)
        upstream_request = client.build_request(
            request.method,
            _upstream_url(self.pool.base_url(service), request),
            headers=upstream_request_headers(
                request, service, trust_forwarded=self.trust_forwarded
            ),
            content=body,
        )
        streamed = body if isinstance(body, _CountingBody) else None
        try:
            upstream = await client.send(upstream_request, stream=True)
        except Exception as exc:
            if streamed is not None and streamed.exceeded:
                return self.too_large(request)
            return self._transport_problem(exc, service, request)
        if streamed is not None and streamed.exceeded:
            await upstream.aclose()
            return self.too_large(request)

        response = StreamingResponse(
            self._relay(upstream, service),
            status_code=upstream.status_code,
            background=BackgroundTask(upstream.aclose),
        )
        response.raw_headers = downstream_response_headers(upstream)
        return response

    @staticmethod
    async def _relay(upstream: httpx.Response, service: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            # Headers are gone already; aborting the stream is all that is left to do.
            log.warning(
                "upstream response interrupted",
                extra={"upstream": service, "error": type(exc).__name__},
            )
            raise

    @staticmethod
    def _transport_problem(exc: Exception, service: str, request: Request) -> Response:
        if isinstance(exc, httpx.TimeoutException):
            status, detail = 504, f"The {service} service did not answer in time."
        elif isinstance(exc, httpx.ConnectError):
            status, detail = 502, f"The {service} service is not reachable."
        elif isinstance(exc, httpx.TransportError):
            status, detail = 502, f"The {service} service gave no usable answer."
        else:
            raise exc
        log.warning(
            "upstream failed",
            extra={"upstream": service, "error": type(exc).__name__, "status": status},
        )
        return problem_response(status, detail, request=request)


def install_proxy(
    app: FastAPI,
    settings: Any,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    services: tuple[str, ...] = SERVICES,
) -> None:
    """Route `/{service}` and `/{service}/...` (every method) to the services.

    Call it after every other route is added: the catch-alls must come last. The upstream
    clients are opened lazily on first use; add `start_upstreams` / `stop_upstreams`
    (upstander.gateway.proxy) to the ServiceSpec's on_startup / on_shutdown to open them at
    start and close them at shutdown.
    """
    endpoint = Proxy(get_upstreams(app, settings, transport), settings)
    for service in services:
        for path in (f"/{service}", f"/{service}/{{path:path}}"):
            app.router.routes.append(
                Route(path, endpoint.handle, methods=METHODS, include_in_schema=False)
            )
