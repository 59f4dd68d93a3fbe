"""Request ids, JSON logs that carry them, and Prometheus metrics — with no personal data.

Anonymous reporters leave no timing trace either. A request to an anonymous route (the report
form and its submission, receipt exchange, the reporter's own routes: `ANONYMOUS_PATHS`), or
one whose handler called `keep_time_coarse()` (delivering an event about an anonymous report),
is served "coarse": every log line written while serving it, the access line included, carries
its time floored to the hour and no request id, and it is left out of the Prometheus metrics
(a counter's step would date it to the scrape interval). No line ever holds a client address,
user agent, query string or body.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json
import logging
import os
import re
import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Scope

from upstander.kit.clock import coarse
from upstander.kit.edge import EdgeMiddleware, Exchange
from upstander.kit.metrics import CONTENT_TYPE, Counter, Histogram, Registry

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# `extra={COARSE_TIME: True}` on a log call: this line's time is kept to the hour.
COARSE_TIME = "coarse_time"
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    COARSE_TIME,
}

# Routes an anonymous reporter uses, on the gateway and on the services alike (the proxy keeps
# the path). A path matches a prefix when equal to it or below it.
ANONYMOUS_PATHS: tuple[str, ...] = (
    "/auth/receipt",  # gateway: receipt code → reporter token
    "/intake/v1/forms",  # the public form, read just before writing
    "/intake/v1/reports",  # the submission
    "/intake/v1/reporter",  # the reporter's later attachments, escrow
    "/intake/v1/escrow",
    "/intake/v1/records",  # private records (docs/escrow.md)
    "/intake/internal/receipts",  # the gateway's receipt check
    "/intake/internal/reports",  # cases fetching a report's files, seconds after it is sent
    "/cases/v1/reporter",  # the reporter's case and conversation
    "/r",  # the reporter's web page
)


def is_anonymous_path(path: str, prefixes: tuple[str, ...] = ANONYMOUS_PATHS) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


@dataclass
class _Timing:
    """Whether the request being served keeps its times coarse; shared by reference with
    the handler's context, so `keep_time_coarse()` deep inside reaches the access line."""

    coarse: bool = False


_timing_var: contextvars.ContextVar[_Timing | None] = contextvars.ContextVar(
    "upstander_timing", default=None
)


def keep_time_coarse() -> None:
    """Serve the current request coarse (see the module): call it from a handler whose work
    is tied to an anonymous reporter. Outside a request it does nothing; use
    `coarse_timing()` there."""
    timing = _timing_var.get()
    if timing is not None:
        timing.coarse = True


@contextmanager
def coarse_timing(coarse: bool = True) -> Iterator[None]:
    """Log lines written inside the block keep their time to the hour and no request id.
    With `coarse=False` the block starts precise and turns coarse if `keep_time_coarse()`
    is called inside (work outside a request: an event from the broker)."""
    token = _timing_var.set(_Timing(coarse=coarse))
    try:
        yield
    finally:
        _timing_var.reset(token)


def time_is_coarse() -> bool:
    """True while serving a coarse request or inside `coarse_timing()`."""
    timing = _timing_var.get()
    return timing is not None and timing.coarse


def _record_is_coarse(record: logging.LogRecord) -> bool:
    if getattr(record, COARSE_TIME, False) or time_is_coarse():
        return True
    # The problem handler logs unhandled errors outside the middleware, naming the path.
    path = getattr(record, "path", None)
    return isinstance(path, str) and is_anonymous_path(path)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def entry(
        self, created: float, level: str, logger: str, message: str, coarse_line: bool
    ) -> dict[str, Any]:
        """A line's fixed fields; the caller adds its own after them."""
        moment = datetime.fromtimestamp(created, UTC)
        return {
            "time": (coarse(moment) if coarse_line else moment).isoformat(),
            "level": level,
            "service": self.service,
            "logger": logger,
            "message": message,
            # A request id would link a coarse line to the precise ones around it.
            "request_id": None if coarse_line else request_id_var.get(),
        }

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            _record_is_coarse(record),
        )
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _json_stream_of(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler an INFO line of `logger` reaches when that is the kit's own JSON stream
    (`configure_logging`) and nothing else listens (no other handler, no filter), else None.
    A test's log capture adds a handler, and the line then goes the usual way."""
    if logger.disabled:
        return None
    root = logging.root
    current: logging.Logger | None = logger
    while current is not None and current is not root:
        if current.handlers or current.filters or not current.propagate:
            return None
        current = current.parent
    handlers = root.handlers
    if len(handlers) != 1 or root.filters:
        return None
    handler = handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or type(handler.formatter) is not JsonFormatter
        or handler.level > logging.INFO
    ):
        return None
    return handler


# Access lines are written in batches (as nginx's `access_log ... buffer= flush=`): one write
# per many requests instead of a system call each, at most this late or this big.
ACCESS_FLUSH_SECONDS = 0.05
ACCESS_BUFFER_CHARS = 32 * 1024


class _AccessLines:
    """The access lines bound for one JSON stream, written together: when `ACCESS_BUFFER_CHARS`
    have gathered, or `ACCESS_FLUSH_SECONDS` after the first of a batch (a timer on the running
    loop), or at exit. Without a running loop a line is written at once. Lines the process
    has not written when it is killed (SIGKILL) are lost, as with any buffered log; a normal
    exit writes them."""

    _all: weakref.WeakSet[_AccessLines] = weakref.WeakSet()

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler  # its lock guards the lines too (apps may serve from threads)
        self.lines: list[str] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_loop: asyncio.AbstractEventLoop | None = None
        _AccessLines._all.add(self)

    @classmethod
    def of(cls, handler: logging.StreamHandler[Any]) -> _AccessLines:
        lines: _AccessLines | None = getattr(handler, "_upstander_access_lines", None)
        if lines is None:
            lines = cls(handler)
            handler._upstander_access_lines = lines  # type: ignore[attr-defined]
        return lines

    def add(self, line: str) -> None:
        loop = _running_loop()
        self.handler.acquire()
        try:
            self.lines.append(line)
            self.size += len(line)
            full = self.size >= ACCESS_BUFFER_CHARS
            pending = self.timer_loop
            if not full and loop is not None and (pending is None or pending.is_closed()):
                # No batch waiting, or its loop is gone before its timer fired: a new batch.
                self.timer = loop.call_later(ACCESS_FLUSH_SECONDS, self.flush)
                self.timer_loop = loop
        finally:
            self.handler.release()
        if full or loop is None:
            self.flush()

    def flush(self) -> None:
        handler = self.handler
        handler.acquire()
        try:
            if self.timer is not None and self.timer_loop is _running_loop():
                self.timer.cancel()  # its own loop's timer only (another thread's fires anyway)
            self.timer = self.timer_loop = None
            text, self.lines, self.size = "".join(self.lines), [], 0
            if text:
                handler.stream.write(text)
                handler.flush()
        except (OSError, ValueError):
            pass  # as the logging module: a closed or broken stream never fails a request
        finally:
            handler.release()

    @classmethod
    def flush_all(cls) -> None:
        for lines in list(cls._all):
            lines.flush()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


atexit.register(_AccessLines.flush_all)


def flush_access_lines() -> None:
    """Write every access line still waiting (on shutdown, before other last lines)."""
    _AccessLines.flush_all()


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = None if _record_is_coarse(record) else request_id_var.get()
        base = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        return f"{base} [request_id={rid}]" if rid else base


def configure_child_logging(service: str) -> None:
    """Logging in a child process an app started (migrations, its OpenAPI document): as the
    app's, from the environment it inherited (`UPSTANDER_LOG_LEVEL`, `UPSTANDER_LOG_JSON`)."""
    plain = os.environ.get("UPSTANDER_LOG_JSON", "true").lower() in {"0", "false", "no", "off"}
    configure_logging(service, os.environ.get("UPSTANDER_LOG_LEVEL", "INFO"), not plain)


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    _AccessLines.flush_all()  # lines bound for a handler about to be replaced
    if json_logs:
        # What no JSON line shows is not gathered for every record (the logging module's own
        # optimisations, https://docs.python.org/3/howto/logging.html#optimization): the
        # caller's file and line (a walk up the stack per record), thread and process names.
        # Plain logs (development, tests) keep them for whoever formats them.
        logging._srcfile = None  # type: ignore[attr-defined]
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_logs else PlainFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log records client addresses; we keep our own, without them.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


class RequestId:
    """Edge step (kit/edge.py): accept a sane `X-Request-ID` or make one; return it; expose it
    to logs (`request_id_var`) and handlers (`request.state.request_id`)."""

    name = "request_id"

    def enter(self, exchange: Exchange) -> None:
        incoming = exchange.header(b"x-request-id")
        text = incoming.decode("latin-1") if incoming else None
        # A fresh id: 32 random hex digits (as `uuid4().hex`, without building a UUID).
        request_id = text if text and _VALID_REQUEST_ID.match(text) else os.urandom(16).hex()
        exchange.scope.setdefault("state", {})["request_id"] = request_id
        exchange.state["request_id"] = (request_id.encode(), request_id_var.set(request_id))
        exchange.on_start(self._start)
        exchange.on_exit(self._exit)

    @staticmethod
    def _start(exchange: Exchange, message: Message) -> None:
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
        headers.append((b"x-request-id", exchange.state["request_id"][0]))
        message["headers"] = headers

    @staticmethod
    def _exit(exchange: Exchange) -> None:
        request_id_var.reset(exchange.state["request_id"][1])


class RequestIdMiddleware(EdgeMiddleware):
    """`RequestId` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, steps=[RequestId()])


class Metrics:
    """Per-app registry (several apps can live in one test process)."""

    def __init__(self, service: str) -> None:
        self.registry = Registry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service

    def render(self) -> Response:
        return Response(self.registry.render(), media_type=CONTENT_TYPE)


# Label sets kept per access step; past this many (methods are the client's to choose) the
# children are looked up each time instead of remembered.
_MAX_REMEMBERED_LABELS = 4096
_QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})


class AccessLog:
    """Edge step: log method, route template, status and duration. Never the client address,
    user agent, query string or body: anonymous reporters must leave no trace. Requests to
    `anonymous_paths`, and those a handler marks with `keep_time_coarse()`, are served coarse
    (see the module): an hour-precision line without request id, and no metrics."""

    name = "access_log"

    def __init__(
        self, metrics: Metrics, anonymous_paths: tuple[str, ...] = ANONYMOUS_PATHS
    ) -> None:
        self.metrics = metrics
        self.anonymous_paths = anonymous_paths
        self.log = logging.getLogger("upstander.access")
        # (method, route, status) → the counter's and the histogram's children.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def enter(self, exchange: Exchange) -> None:
        timing = _Timing(
            coarse=is_anonymous_path(exchange.scope.get("path", ""), self.anonymous_paths)
        )
        exchange.state["access"] = (time.perf_counter(), timing, _timing_var.set(timing))
        exchange.on_exit(self._exit)

    def _exit(self, exchange: Exchange) -> None:
        started, timing, token = exchange.state["access"]
        try:
            self._record(exchange.scope, exchange.status, started, timing.coarse)
        finally:
            _timing_var.reset(token)

    def _labelled(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            metrics = self.metrics
            children = (
                metrics.requests.labels(metrics.service, method, template, str(status)),
                metrics.latency.labels(metrics.service, method, template),
            )
            if len(self._children) < _MAX_REMEMBERED_LABELS:
                self._children[key] = children
        return children

    def _record(self, scope: Scope, status: int, started: float, coarse_line: bool) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        if not coarse_line:
            requests, latency = self._labelled(method, template, status)
            requests.inc()
            latency.observe(elapsed)
        if template not in _QUIET_ROUTES and self.log.isEnabledFor(logging.INFO):
            fields = {
                "method": method,
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            }
            handler = _json_stream_of(self.log)
            if handler is None:
                self.log.info("request", extra={**fields, COARSE_TIME: coarse_line})
                return
            # The line `JsonFormatter` would write for that record, written without building
            # the record (the access line is the one line of every request).
            formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
            entry = formatter.entry(
                time.time(), "info", self.log.name, "request", coarse_line or time_is_coarse()
            )
            entry.update(fields)
            _AccessLines.of(handler).add(json.dumps(entry, default=str) + handler.terminator)


class AccessLogMiddleware(EdgeMiddleware):
    """`AccessLog` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, anonymous_paths: tuple[str, ...] = ANONYMOUS_PATHS
    ) -> None:
        super().__init__(app, steps=[AccessLog(metrics, anonymous_paths)])


def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return metrics.render()
