"""Test helpers that wire several in-process apps together over one httpx transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


def _authority(target: str) -> str:
    """`host:port` for a key given as `host:port` or as a URL (`http://127.0.0.1:8002`)."""
    if "://" in target:
        url = httpx.URL(target)
        port = url.port or (443 if url.scheme == "https" else 80)
        return f"{url.host}:{port}"
    return target


class RoutingTransport(httpx.AsyncBaseTransport):
    """Send each request to the transport registered for its `host:port`.

    Values may be transports or ASGI apps (wrapped in `httpx.ASGITransport`). A request for an
    unknown authority goes to `default` when given, otherwise fails as a refused connection
    (`httpx.ConnectError`), which is how a stopped service looks to a client.
    """

    def __init__(
        self,
        routes: Mapping[str, httpx.AsyncBaseTransport | Any] | None = None,
        *,
        default: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.routes: dict[str, httpx.AsyncBaseTransport] = {}
        self.default = default
        for target, value in (routes or {}).items():
            self.add(target, value)

    def add(self, target: str, value: httpx.AsyncBaseTransport | Any) -> None:
        transport = (
            value if isinstance(value, httpx.AsyncBaseTransport) else httpx.ASGITransport(value)
        )
        self.routes[_authority(target)] = transport

    def remove(self, target: str) -> None:
        self.routes.pop(_authority(target), None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        transport = self.routes.get(f"{url.host}:{port}", self.default)
        if transport is None:
            raise httpx.ConnectError(f"no route to {url.host}:{port}", request=request)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self.routes.values():
            await transport.aclose()
        if self.default is not None:
            await self.default.aclose()
