"""The reverse proxy from the gateway to the services: streamed both ways, hop-by-hop headers
stripped, request ids propagated, anonymous intake traffic forwarded without client traces.

A request body is read before the service is asked when it is small (up to
`proxy_buffer_body_bytes`, which every report and message is): a client that sends half a body
and stalls then holds only its own connection to the gateway, never one of the pool's
connections to a service, until the kit's body deadline cuts it (408). Larger bodies
(attachments, evidence) are streamed, and at most `proxy_max_streamed_uploads` of them per
service at once, so slow uploads can never take the whole pool.

The hot path: the proxy is a plain ASGI endpoint (no Request/Response objects on the way
through), its routes are tried in front of the whole app (`ProxyLane`: the edge's steps, then
the proxy, without FastAPI's outer layers and the router; matching a proxied path against the
gateway's hundred-odd routes first cost more than forwarding it), a small answer with a
Content-Length (up to `RESPONSE_BUFFER_BYTES`) is read whole and sent in one message, and the
header sets, base URLs and settings are worked out once. The client is the gateway's own
HTTP/1.1 pool (`upstander.gateway.proxy.client`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from upstander.gateway.proxy.client import (
    Body,
    Forwarder,
    Reply,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from upstander.gateway.proxy.upstreams import SERVICES, UpstreamPool, get_upstreams
from upstander.kit.edge import EdgeMiddleware, edge_of
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
# The gateway writes these itself.
GATEWAY_WRITTEN = frozenset({"x-forwarded-proto", "x-forwarded-host", "x-request-id"})
# An answer with a Content-Length up to this is read whole and sent in one message.
RESPONSE_BUFFER_BYTES = 64 * 1024

# Worked out once: the request header names never forwarded (besides the ones `Connection`
# names and x-upstander-*), for authenticated and for anonymous services.
_NOT_FORWARDED = frozenset(
    name.encode("latin-1") for name in HOP_BY_HOP | CLIENT_ADDRESS_HEADERS | GATEWAY_WRITTEN
)
_NOT_FORWARDED_ANONYMOUS = _NOT_FORWARDED | {name.encode("latin-1") for name in ANONYMOUS_DROPPED}
_INTERNAL_PREFIX = INTERNAL_PREFIX.encode("latin-1")


class _BodyTooLarge(Exception):
    pass


def _connection_tokens(values: Iterable[bytes]) -> set[bytes]:
    tokens: set[bytes] = set()
    for value in values:
        tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


def _forwarded_headers(
    scope: Scope, *, anonymous: bool, trust_forwarded: bool
) -> list[tuple[str, str]]:
    """The headers the service receives for the request in `scope`: one pass over its headers."""
    dropped = _NOT_FORWARDED_ANONYMOUS if anonymous else _NOT_FORWARDED
    kept: list[tuple[bytes, bytes]] = []
    connection: list[bytes] = []
    prior_forwarded_for: list[str] = []
    request_id: bytes | None = None
    host: bytes | None = None
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.lower()
        if name in dropped or name.startswith(_INTERNAL_PREFIX):
            if name == b"x-request-id":
                request_id = raw_value if request_id is None else request_id
            elif name == b"host":
                host = raw_value if host is None else host
            elif name == b"x-forwarded-for":
                # Whitespace around a field value is not part of it (RFC 9110 §5.5).
                prior_forwarded_for.append(raw_value.strip(b" \t").decode("latin-1"))
            elif name == b"connection":
                connection.append(raw_value.strip(b" \t"))
            continue
        # The server keeps a trailing space (`Authorization: Bearer `) that the upstream
        # client would refuse to send, or send as it is: not part of the value either way.
        kept.append((raw_name, raw_value.strip(b" \t")))
    if connection:
        named = _connection_tokens(connection)
        kept = [(name, value) for name, value in kept if name.lower() not in named]
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in kept]

    state = scope.get("state")
    state_id = state.get("request_id") if isinstance(state, dict) else None
    if state_id:
        headers.append(("x-request-id", state_id))
    elif request_id:
        headers.append(("x-request-id", request_id.decode("latin-1")))
    if host:
        headers.append(("x-forwarded-host", host.decode("latin-1")))
    headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
    if not anonymous:
        client = scope.get("client")
        chain = prior_forwarded_for if trust_forwarded else []
        if client:
            chain.append(client[0])
        if chain:
            headers.append(("x-forwarded-for", ", ".join(chain)))
    return headers


def upstream_request_headers(
    request: Request, service: str, *, trust_forwarded: bool = False
) -> list[tuple[str, str]]:
    """The headers the service receives for `request`."""
    return _forwarded_headers(
        request.scope, anonymous=service in ANONYMOUS_SERVICES, trust_forwarded=trust_forwarded
    )


# The gateway's own server adds these; the service's copies would be duplicates.
SERVER_OWNED = frozenset({"date", "server"})
_NOT_RELAYED = frozenset(name.encode("latin-1") for name in HOP_BY_HOP | SERVER_OWNED)


def downstream_response_headers(
    headers: Iterable[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The service's headers (names lowercased) as the caller receives them: hop-by-hop ones
    and the ones `Connection` names dropped, repeated headers (Set-Cookie) kept."""
    relayed = [(name, value) for name, value in headers if name not in _NOT_RELAYED]
    connection = [value for name, value in headers if name == b"connection"]
    if connection:
        named = _connection_tokens(connection)
        relayed = [(name, value) for name, value in relayed if name not in named]
    return relayed


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


def _target(scope: Scope) -> str:
    """The path and query as the caller sent them."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    target = raw_path + b"?" + query if query else raw_path
    return target.decode("latin-1")


class Proxy:
    """The ASGI endpoint behind `/{service}/...` for every proxied service."""

    def __init__(
        self, pool: UpstreamPool, settings: Any, services: tuple[str, ...] = SERVICES
    ) -> None:
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
        self.internal_prefixes = {service: f"/{service}/internal/" for service in services}

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(scope, receive, send)
        if response is not None:
            await response(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> Response | None:
        """Forward the request; a Response to send when the proxy answers itself (or None
        when the service's answer was sent)."""
        path: str = scope["path"]
        service = path.split("/", 2)[1]
        request = Request(scope, receive)
        if self.block_internal and path.startswith(self.internal_prefixes[service]):
            # Service-to-service routes (event delivery) are reached directly, never from outside.
            return problem_response(404, "No such resource.", request=request)
        declared_header: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"content-length":
                if declared_header is None:
                    declared_header = value
            elif name == b"transfer-encoding":
                chunked = True
        declared: int | None = None
        if declared_header is not None:
            try:
                declared = int(declared_header.decode("latin-1"))
            except ValueError:
                return problem_response(400, "Bad Content-Length.", request=request)
            if declared > self.max_body_bytes:
                return self.too_large(request)

        has_body = (declared_header is not None and declared_header != b"0") or chunked
        content = await self._read_body(request, declared) if has_body else b""
        if content is None:
            return self.too_large(request)
        if isinstance(content, _CountingBody):
            if not self._take_upload_slot(service):
                return self.uploads_busy(service, request)
            try:
                return await self._forward(request, service, content, send)
            finally:
                self._free_upload_slot(service)
        return await self._forward(request, service, content or None, send)

    async def _forward(
        self, request: Request, service: str, body: Body, send: Send
    ) -> Response | None:
        scope = request.scope
        forwarder: Forwarder = self.pool.forwarder(service)
        headers = _forwarded_headers(
            scope, anonymous=service in ANONYMOUS_SERVICES, trust_forwarded=self.trust_forwarded
        )
        streamed = body if isinstance(body, _CountingBody) else None
        try:
            reply = await forwarder.send(scope["method"], _target(scope), headers, body)
        except Exception as exc:
            if streamed is not None and streamed.exceeded:
                return self.too_large(request)
            if not isinstance(exc, UpstreamError):
                raise
            return self._upstream_problem(exc, service, request)
        if streamed is not None and streamed.exceeded:
            await reply.aclose()
            return self.too_large(request)

        relayed = downstream_response_headers(reply.headers)
        if reply.length is not None and reply.length <= RESPONSE_BUFFER_BYTES:
            try:
                content = await reply.read()
            except UpstreamError as exc:
                return self._upstream_problem(exc, service, request)
            finally:
                await reply.aclose()
            await send({"type": "http.response.start", "status": reply.status, "headers": relayed})
            await send({"type": "http.response.body", "body": content})
            return None
        response = StreamingResponse(
            self._relay(reply, service),
            status_code=reply.status,
            background=BackgroundTask(reply.aclose),
        )
        response.raw_headers = relayed
        return response

    @staticmethod
    async def _relay(reply: Reply, service: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in reply.chunks():
                yield chunk
        except UpstreamError as exc:
            # Headers are gone already; aborting the stream is all that is left to do.
            log.warning(
                "upstream response interrupted",
                extra={"upstream": service, "error": str(exc)},
            )
            raise

    @staticmethod
    def _upstream_problem(exc: UpstreamError, service: str, request: Request) -> Response:
        if isinstance(exc, UpstreamTimeout):
            status, detail = 504, f"The {service} service did not answer in time."
        elif isinstance(exc, UpstreamUnreachable):
            status, detail = 502, f"The {service} service is not reachable."
        else:
            status, detail = 502, f"The {service} service gave no usable answer."
        log.warning(
            "upstream failed",
            extra={"upstream": service, "error": str(exc), "status": status},
        )
        return problem_response(status, detail, request=request)


def _route_paths(routes: list[BaseRoute]) -> Iterator[tuple[BaseRoute, str | None]]:
    """Every route of the app with its full path (None when it has none), routers included
    with `include_router` seen through."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # a FastAPI that keeps included routes flat
        for route in routes:
            yield route, getattr(route, "path", None)
        return
    for context in iter_route_contexts(routes):
        yield context.original_route, context.path


class _FirstRoute(Route):
    """A proxy route tried before every other one, so that a proxied request is not matched
    against each of the gateway's routes first. It stands aside (and the same route at the
    end of the list takes over) while any other route lives under its service's prefix or
    could (a path starting with a parameter): the gateway's own routes always win."""

    def __init__(self, path: str, endpoint: Proxy, *, router: Router, prefix: str) -> None:
        super().__init__(path, endpoint, methods=METHODS, include_in_schema=False)
        self.router = router
        self.prefix = prefix
        self._shadowed = True
        self._checked_routes = -1

    def _is_shadowed(self) -> bool:
        routes = self.router.routes
        if len(routes) != self._checked_routes:
            self._checked_routes = len(routes)
            self._shadowed = any(
                path is None
                or path == ""
                or path.startswith("/{")
                or path == self.prefix
                or path.startswith(self.prefix + "/")
                for route, path in _route_paths(routes)
                if not isinstance(getattr(route, "endpoint", None), Proxy)
            )
        return self._shadowed

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return Match.NONE, {}
        if self._is_shadowed():
            return Match.NONE, {}
        return super().matches(scope)


def install_proxy(
    app: FastAPI,
    settings: Any,
    *,
    transport: Any = None,
    services: tuple[str, ...] = SERVICES,
) -> None:
    """Route `/{service}` and `/{service}/...` (every method) to the services.

    `transport` (an `httpx.AsyncBaseTransport`) replaces the network, for tests. Call it after
    every other route is added: the catch-alls come last, and copies of them first that give
    way to any gateway route under a service's prefix. The upstream clients are opened lazily
    on first use; add `start_upstreams` / `stop_upstreams` (upstander.gateway.proxy) to the
    ServiceSpec's on_startup / on_shutdown to open them at start and close them at shutdown.
    """
    endpoint = Proxy(get_upstreams(app, settings, transport), settings, services)
    router = app.router
    first: list[_FirstRoute] = []
    for service in services:
        for path in (f"/{service}", f"/{service}/{{path:path}}"):
            router.routes.append(Route(path, endpoint, methods=METHODS, include_in_schema=False))
            first.append(_FirstRoute(path, endpoint, router=router, prefix=f"/{service}"))
    router.routes[0:0] = first
    # The same routes, tried in front of the whole app (ProxyLane).
    _install_lane(app, endpoint, first)


class ProxyLane:
    """The outermost layer of the gateway's app: a request for a proxied service goes through
    the edge's steps (the same `Edge`, so the same security headers, CORS, limits, revocation
    check, request id, access line and error answer) straight to the proxy, without FastAPI's
    outer layers, its exception middleware and the router, which a forwarded request never
    needs. Anything else, including a path a gateway route shadows (`_FirstRoute`) and a method
    the proxy does not take, goes through the whole app as before."""

    def __init__(self, app: ASGIApp, lane: ASGIApp, routes: list[_FirstRoute]) -> None:
        self.app = app
        self.lane = lane
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    scope["route"] = route
                    await self.lane(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _install_lane(app: FastAPI, endpoint: Proxy, routes: list[_FirstRoute]) -> None:
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return ProxyLane(build(), EdgeMiddleware(endpoint, edge=edge_of(app)), routes)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
