"""Guards on the raw HTTP exchange, as problem+json: body size (413), content type (415), how
long a body may take to arrive (408), and how many requests one source may hold open while
their bodies are still arriving (429).

The last two keep reporting up when someone opens many connections that send half a body and
stall (slowloris): each such request is cut when its body falls behind its deadline, and one
source can hold only so many at once, so the server's capacity stays with everyone else.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import os
import secrets
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Scope

from upstander.kit.edge import Answer, EdgeMiddleware, Exchange
from upstander.kit.errors import PROBLEM_BASE, PROBLEM_JSON


class _CertificatesOnFirstUse(ssl.SSLContext):
    """A client TLS context that loads its trusted certificates when its first connection is
    wrapped (`wrap_socket`, `wrap_bio`: asyncio, uvloop and anyio all go through one), not
    when it is made: most processes never open a TLS connection (the apps talk plain HTTP on
    loopback or inside the cluster) and the bundle costs 1.4 MB held for nothing."""

    _cafile: str | None
    _capath: str | None
    _loaded: bool

    def _load(self) -> None:
        if not self._loaded:
            self.load_verify_locations(cafile=self._cafile, capath=self._capath)
            self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of the process's HTTP clients (`httpx.AsyncClient(verify=...)`),
    the one httpx would build for each by default (`ssl.create_default_context` with
    `SSL_CERT_FILE` or `SSL_CERT_DIR` when set, else certifi's bundle), built once and its
    certificates loaded on first use. A client left to build its own loads the whole bundle
    again, 0.8 MB each (the gateway had ten); an `SSLContext` is meant to be shared."""
    context = _CertificatesOnFirstUse(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks host names
    if os.environ.get("SSL_CERT_FILE"):
        context._cafile, context._capath = os.environ["SSL_CERT_FILE"], None
    elif os.environ.get("SSL_CERT_DIR"):
        context._cafile, context._capath = None, os.environ["SSL_CERT_DIR"]
    else:
        import certifi

        context._cafile, context._capath = certifi.where(), None
    context._loaded = False
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog  # as ssl.create_default_context does
    return context


DEFAULT_CONTENT_TYPES = (
    "application/json",
    "application/problem+json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
)
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

# The key of the per-source counters' hash: random per process, never stored, so a counter's
# key cannot be turned back into an address even by someone holding a memory dump and a list
# of candidate addresses from another process.
_SOURCE_KEY = secrets.token_bytes(32)


class BodyRefused(HTTPException):
    """The body was refused while it was being received (too slow, too large).

    An `HTTPException`, so that FastAPI's body parsing lets it through (it turns any other
    error into a 400) and the kit's handler renders it; `BodyGuardMiddleware` renders it itself
    when it surfaces outside the app's handlers (e.g. from a middleware reading the body). The
    connection is closed after the answer: the rest of the body will not be read."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail, headers={"Connection": "close"})


class _SettingsLike(Protocol):
    request_body_timeout_seconds: float
    request_body_min_bytes_per_second: int
    request_body_max_seconds: float


@dataclass(frozen=True)
class BodyDeadline:
    """How long a request body may take to arrive, counted from the start of the request:
    `timeout` seconds, plus one second for every `min_rate` bytes received so far (so a large
    upload at a reasonable rate is never cut), and never more than `max_seconds`.

    A stalled body is cut at `timeout`; one that trickles in slower than `min_rate` falls
    behind its allowance and is cut too; one at any rate is cut at `max_seconds`."""

    timeout: float = 10.0
    min_rate: float = 8192.0
    max_seconds: float = 300.0

    def allowance(self, received: int) -> float:
        """Seconds from the start of the request by which the next bytes must have arrived."""
        return min(self.timeout + received / self.min_rate, self.max_seconds)

    @classmethod
    def from_settings(cls, settings: _SettingsLike) -> BodyDeadline:
        return cls(
            timeout=float(settings.request_body_timeout_seconds),
            min_rate=float(settings.request_body_min_bytes_per_second),
            max_seconds=float(settings.request_body_max_seconds),
        )


def source_key(scope: Scope) -> str:
    """A keyed hash of the request's source address (the socket peer: the servers run without
    proxy headers). Held in memory only, never logged or stored."""
    client = scope.get("client")
    host = str(client[0]) if client else "unknown"
    return hashlib.blake2b(host.encode(), key=_SOURCE_KEY, digest_size=16).hexdigest()


class SourceSlots:
    """How many requests each source has open whose bodies are still arriving, at most `limit`.

    A source's entry exists only while it has such a request: it is deleted when its count
    drops to zero. Nothing awaits in here, so it is atomic on the event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self.limit = limit
        self._held: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        held = self._held.get(key, 0)
        if held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: str) -> None:
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def __len__(self) -> int:
        """Sources with a body still arriving (the number of entries in memory)."""
        return len(self._held)


def problem_answer(
    scope: Scope,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    close: bool = True,
    retry_after: int | None = None,
) -> Answer:
    problem: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope.get("path"),
    }
    request_id = (scope.get("state") or {}).get("request_id")
    if request_id:
        problem["request_id"] = request_id
    body = json.dumps(problem).encode()
    headers = [
        (b"content-type", _PROBLEM_JSON),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if close:
        # The body is left unread: ending the connection is the only clean way to be rid of it.
        headers.append((b"connection", b"close"))
    return Answer(status, headers, body)


_PROBLEM_JSON = PROBLEM_JSON.encode()
_REFUSED_PROBLEMS = {
    408: ("request-timeout", "Request timeout"),
    413: ("payload-too-large", "Payload too large"),
}


class BodyGuard:
    """Edge step (kit/edge.py): refuse bodies over `max_bytes` (declared or streamed) and
    unexpected content types; cut bodies that arrive slower than `deadline` allows (408); and,
    when `per_source` is set (the gateway), answer 429 at once to a source that already has
    `per_source` requests whose bodies are still arriving."""

    name = "body_guard"

    def __init__(
        self,
        *,
        max_bytes: int,
        content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES,
        content_types_under: Mapping[str, tuple[str, ...]] | None = None,
        deadline: BodyDeadline | None = None,
        per_source: int = 0,
    ) -> None:
        self.max_bytes = max_bytes
        self.content_types = frozenset(content_types)
        # Path prefix → more media types accepted under it (`*/*`: any, e.g. the LRS's
        # documents); everywhere else only `content_types`.
        self.content_types_under = tuple((content_types_under or {}).items())
        self.deadline = deadline or BodyDeadline()
        self.slots = SourceSlots(per_source) if per_source > 0 else None
        self._too_large = f"The body exceeds {self.max_bytes} bytes."

    def enter(self, exchange: Exchange) -> Answer | None:
        scope = exchange.scope
        if scope["method"] in BODYLESS_METHODS:
            return None
        headers = exchange.headers()
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                return problem_answer(
                    scope, 400, "bad-request", "Bad request", "Bad Content-Length."
                )
            if too_large:
                return problem_answer(
                    scope, 413, "payload-too-large", "Payload too large", self._too_large
                )
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0]
        content_type = content_type.strip().lower()
        has_body = declared not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and content_type and not self._accepts(content_type, scope["path"]):
            return problem_answer(
                scope,
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"Content type {content_type!r} is not accepted here.",
            )
        if not has_body:
            return None
        return self._guard(exchange)

    def _guard(self, exchange: Exchange) -> Answer | None:
        scope = exchange.scope
        slots, key = self.slots, None
        if slots is not None:
            key = source_key(scope)
            if not slots.acquire(key):
                return problem_answer(
                    scope,
                    429,
                    "rate-limited",
                    "Too many requests",
                    "Too many requests from this address are still sending their bodies; "
                    "retry later.",
                    retry_after=max(1, math.ceil(self.deadline.timeout)),
                )
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        received = 0
        arriving = True  # until the last body chunk (or a disconnect) came in
        receive = exchange.receive

        def done_arriving(_exchange: Exchange | None = None) -> None:
            nonlocal arriving
            if arriving:
                arriving = False
                if slots is not None and key is not None:
                    slots.release(key)

        async def guarded_receive() -> Message:
            nonlocal received
            if not arriving:
                # The body is in; what follows is waiting for a disconnect, which has no deadline.
                return await receive()
            remaining = started_at + self.deadline.allowance(received) - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    message = await receive()
            except TimeoutError:
                done_arriving()
                raise BodyRefused(408, "The request body did not arrive in time.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    done_arriving()
                    raise BodyRefused(413, self._too_large)
                if not message.get("more_body", False):
                    done_arriving()
            else:
                done_arriving()
            return message

        exchange.receive = guarded_receive
        exchange.on_exit(done_arriving)
        exchange.on_error(self._refused)
        return None

    @staticmethod
    def _refused(exchange: Exchange, error: Exception) -> Answer | None:
        if not isinstance(error, BodyRefused) or exchange.started:
            return None
        slug, title = _REFUSED_PROBLEMS.get(error.status_code, ("bad-request", "Bad request"))
        return problem_answer(exchange.scope, error.status_code, slug, title, error.detail)

    def _accepts(self, content_type: str, path: str) -> bool:
        if content_type.endswith("+json") or content_type in self.content_types:
            return True
        return any(
            path.startswith(prefix) and ("*/*" in extra or content_type in extra)
            for prefix, extra in self.content_types_under
        )


class BodyGuardMiddleware(EdgeMiddleware):
    """`BodyGuard` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES,
        content_types_under: Mapping[str, tuple[str, ...]] | None = None,
        deadline: BodyDeadline | None = None,
        per_source: int = 0,
    ) -> None:
        self.guard = BodyGuard(
            max_bytes=max_bytes,
            content_types=content_types,
            content_types_under=content_types_under,
            deadline=deadline,
            per_source=per_source,
        )
        super().__init__(app, steps=[self.guard])

    @property
    def slots(self) -> SourceSlots | None:
        return self.guard.slots
