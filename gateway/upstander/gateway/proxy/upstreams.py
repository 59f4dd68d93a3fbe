"""One pooled HTTP client per upstream service, made lazily and closed with the app: the
proxy's pool (`app.state.upstreams`), and a small one of its own for `GET /healthz`
(`app.state.health_upstreams`), so a proxy pool busy with traffic never makes the platform
look down.

Each pool has two kinds of client per service: `client(service)`, an `httpx.AsyncClient` for
the gateway's own calls (merged docs, web pages, health), and `forwarder(service)`, what the
proxy forwards requests with (`upstander.gateway.proxy.client`): its own HTTP/1.1 pool on the
network, or the httpx client when the pool was given a `transport` (tests)."""

from __future__ import annotations

import http.cookiejar
import urllib.request
from typing import Any

import httpx
from fastapi import FastAPI

from upstander.gateway.proxy.client import Forwarder, H1Forwarder, HttpxForwarder
from upstander.kit.http import tls_context

SERVICES: tuple[str, ...] = ("intake", "cases", "training", "notify")
KEEPALIVE_EXPIRY_SECONDS = 30.0


class _NoCookieJar(http.cookiejar.CookieJar):
    """A jar that never keeps anything: a proxy shared by every user must not remember one
    user's cookies and send them on another's request (GHSA-7vwr-g6pm-9hc8). Cookies travel
    only as the `Cookie`/`Set-Cookie` headers of the request being forwarded."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: urllib.request.Request) -> None:
        return None


class UpstreamPool:
    """The gateway's clients to the services. Clients are created on first use (so the pool
    works without lifespan hooks); `aclose()` closes them and the next use opens new ones.

    `max_connections` / `max_keepalive_connections` bound each client's pool (default: the
    settings' `proxy_max_connections` / `proxy_max_keepalive_connections`); the forwarders'
    pools are bounded by `max_connections` alone, idle connections included."""

    def __init__(
        self,
        settings: Any,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        services: tuple[str, ...] = SERVICES,
        max_connections: int | None = None,
        max_keepalive_connections: int | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.services = services
        self.max_connections = int(
            max_connections
            if max_connections is not None
            else getattr(settings, "proxy_max_connections", 200)
        )
        self.max_keepalive_connections = int(
            max_keepalive_connections
            if max_keepalive_connections is not None
            else getattr(settings, "proxy_max_keepalive_connections", 50)
        )
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._forwarders: dict[str, Forwarder] = {}
        self._base_urls: dict[str, str] = {}

    def base_url(self, service: str) -> str:
        url = self._base_urls.get(service)
        if url is None:
            url = self._base_urls[service] = str(self.settings.service_url(service)).rstrip("/")
        return url

    def forwarder_keepalive_expiry(self) -> float:
        """How long the proxy keeps an idle connection: a second less than the services keep
        theirs (every app serves with the kit's `server_timeout_keep_alive_seconds`), so that
        a request is not sent on a connection the service is closing at that moment."""
        service_side = getattr(self.settings, "server_timeout_keep_alive_seconds", None)
        if service_side is None:
            return KEEPALIVE_EXPIRY_SECONDS
        return min(KEEPALIVE_EXPIRY_SECONDS, max(0.5, float(service_side) - 1.0))

    def forwarder(self, service: str) -> Forwarder:
        """What the proxy sends `service`'s requests with (made on first use)."""
        forwarder = self._forwarders.get(service)
        if forwarder is None:
            if self.transport is None:
                forwarder = H1Forwarder(
                    self.base_url(service),
                    connect_timeout=float(self.settings.http_connect_timeout),
                    read_timeout=float(self.settings.http_read_timeout),
                    max_connections=self.max_connections,
                    keepalive_expiry=self.forwarder_keepalive_expiry(),
                )
            else:
                forwarder = HttpxForwarder(self.client(service), self.base_url(service))
            self._forwarders[service] = forwarder
        elif isinstance(forwarder, HttpxForwarder) and forwarder.client.is_closed:
            forwarder.client = self.client(service)
        return forwarder

    def client(self, service: str) -> httpx.AsyncClient:
        client = self._clients.get(service)
        if client is None or client.is_closed:
            client = self._make_client()
            self._clients[service] = client
        return client

    def _make_client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(
            float(self.settings.http_read_timeout),
            connect=float(self.settings.http_connect_timeout),
        )
        limits = httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=min(self.max_keepalive_connections, self.max_connections),
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        client = httpx.AsyncClient(
            transport=self.transport,
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            trust_env=False,
            verify=tls_context(),
        )
        client.cookies = _NoCookieJar()  # a raw jar: httpx.Cookies(Cookies) would copy it
        # No default User-Agent/Accept/Accept-Encoding: the service sees only what the caller
        # sent (an anonymous reporter's request gets no User-Agent; no unasked-for gzip).
        for name in list(client.headers.keys()):
            del client.headers[name]
        return client

    async def start(self) -> None:
        for service in self.services:
            self.client(service)

    async def aclose(self) -> None:
        forwarders, self._forwarders = list(self._forwarders.values()), {}
        for forwarder in forwarders:
            await forwarder.aclose()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def get_upstreams(
    app: FastAPI, settings: Any, transport: httpx.AsyncBaseTransport | None = None
) -> UpstreamPool:
    """The app's shared pool (`app.state.upstreams`), made on first call."""
    pool: UpstreamPool | None = getattr(app.state, "upstreams", None)
    if pool is None:
        pool = UpstreamPool(settings, transport=transport)
        app.state.upstreams = pool
    return pool


def get_health_upstreams(
    app: FastAPI, settings: Any, transport: httpx.AsyncBaseTransport | None = None
) -> UpstreamPool:
    """The app's pool for health checks (`app.state.health_upstreams`), made on first call:
    a few connections per service of its own (`health_max_connections`)."""
    pool: UpstreamPool | None = getattr(app.state, "health_upstreams", None)
    if pool is None:
        size = int(getattr(settings, "health_max_connections", 4))
        pool = UpstreamPool(
            settings, transport=transport, max_connections=size, max_keepalive_connections=size
        )
        app.state.health_upstreams = pool
    return pool


def _pools(app: FastAPI) -> list[UpstreamPool]:
    names = ("upstreams", "health_upstreams")
    return [pool for name in names if (pool := getattr(app.state, name, None)) is not None]


async def start_upstreams(app: FastAPI) -> None:
    """Startup hook (ServiceSpec.on_startup): open the upstream clients eagerly."""
    for pool in _pools(app):
        await pool.start()


async def stop_upstreams(app: FastAPI) -> None:
    """Shutdown hook (ServiceSpec.on_shutdown): close every upstream client."""
    for pool in _pools(app):
        await pool.aclose()
