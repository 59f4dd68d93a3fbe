"""The reporter page's calls to the public API of intake and cases, made from the gateway
through the proxy's own pool of upstream clients (no cookie jar, no default headers).

The page sends only what the call needs: a content type, and the reporter's bearer token on
the follow-up calls. Never the reporter's address, user agent, referrer or a request id, so
the services learn exactly what an anonymous API caller would tell them, and less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request

from upstander.gateway.proxy.upstreams import UpstreamPool, get_upstreams


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def detail(self) -> str:
        if isinstance(self.body, dict):
            errors = self.body.get("errors")
            if isinstance(errors, list) and errors:
                return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
            return str(self.body.get("detail") or self.body.get("title") or "")
        return ""


class Unavailable(Exception):
    """The service did not answer usefully (down, timed out, 5xx)."""


def _pool(request: Request) -> UpstreamPool:
    return get_upstreams(request.app, request.app.state.settings)


async def call(
    request: Request,
    service: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    files: Any = None,
    data: Any = None,
) -> Answer:
    pool = _pool(request)
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        response = await pool.client(service).request(
            method,
            pool.base_url(service) + path,
            headers=headers,
            params=params,
            json=json,
            files=files,
            data=data,
        )
    except httpx.HTTPError as exc:
        raise Unavailable(type(exc).__name__) from exc
    if response.status_code >= 500:
        raise Unavailable(f"HTTP {response.status_code}")
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    return Answer(response.status_code, body)
