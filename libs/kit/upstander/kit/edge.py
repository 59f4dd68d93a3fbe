"""The app's edge: one pure-ASGI layer running an ordered list of cheap per-request steps.

Each service (and the gateway) used to wrap its routes in a stack of middlewares (request id,
access log, body guard, idempotency; at the gateway also security headers, CORS, the
revocation check, LRS Basic credentials, the rate limit), each with its own coroutine, its
own `send` wrapper and its own scan of the headers, for every request. The steps here do the
same work inside one layer:

- `enter(exchange)` runs before the app, outermost step first. It may answer at once (return
  an `Answer`: a refusal), change what the app receives (`exchange.receive`, the scope's
  headers), and register what it needs later on the exchange:
  `on_start(hook)` (change the response's start message: headers), `watch(hook)` (see every
  response message), `on_error(handler)` (turn an error from further in into an answer) and
  `on_exit(callback)` (a `finally`: the access line, a context variable reset).
- An answer of a step, or of an error handler, passes through the hooks registered by the
  steps outside it only; the app's response passes through all of them, innermost first.
  That is exactly what the nested middlewares did, in the same order, without the layers.

A step is an object with a `name` and an `enter` that is a plain function: it returns None
(go on), an `Answer`, or an awaitable of either when it has to wait (a database, a limit
store). A step that only looks at the scope costs no coroutine per request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HANDLED",
    "Answer",
    "Edge",
    "EdgeMiddleware",
    "Exchange",
    "Step",
    "edge_of",
]


class Answer:
    """A whole response a step sends instead of the app's: status, raw headers, body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body


# What an error handler returns when it dealt with the error and nothing more is to be sent.
HANDLED = object()

StartHook = Callable[["Exchange", Message], None]
ErrorHandler = Callable[["Exchange", Exception], "Answer | object | None"]
ExitCallback = Callable[["Exchange"], "Awaitable[None] | None"]


class Exchange:
    """One request as the edge's steps see it. `scope` is the app's scope (steps may change
    its headers in place); `receive` is what the app will read the body with."""

    __slots__ = (
        "_frames",
        "_headers",
        "_hooks",
        "_send",
        "error",
        "finished",
        "receive",
        "scope",
        "started",
        "state",
        "status",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        self._headers: dict[bytes, bytes] | None = None
        # (hook, every message?) in registration order: outermost first.
        self._hooks: list[tuple[Callable[[Exchange, Message], None], bool]] = []
        # (error handler or exit callback, is it a handler?, hooks outside it)
        self._frames: list[tuple[Callable[..., Any], bool, int]] = []
        self.status = 500  # until a response starts
        self.started = False
        self.finished = False
        self.error: BaseException | None = None
        # Per-request values steps share (the request id, the access line's timing...).
        self.state: dict[str, Any] = {}

    # -- the request
    def header(self, name: bytes) -> bytes | None:
        """The first request header called `name` (lower case), or None."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value
        return None

    def headers(self) -> dict[bytes, bytes]:
        """The request headers as `dict(scope["headers"])`, built once per request."""
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        return self._headers

    def headers_changed(self) -> None:
        """Call after replacing `scope["headers"]`."""
        self._headers = None

    # -- registrations
    def on_start(self, hook: StartHook) -> None:
        """`hook(exchange, message)` on the response's start message (after the inner ones)."""
        self._hooks.append((hook, False))

    def watch(self, hook: StartHook) -> None:
        """`hook(exchange, message)` on every response message coming from further in."""
        self._hooks.append((hook, True))

    def on_error(self, handler: ErrorHandler) -> None:
        """`handler(exchange, error)` for an `Exception` raised further in: an `Answer` to send
        (only when no response started), `HANDLED`, or None to let it go on."""
        self._frames.append((handler, True, len(self._hooks)))

    def on_exit(self, callback: ExitCallback) -> None:
        """`callback(exchange)` (sync or async) once the request is over, whatever happened."""
        self._frames.append((callback, False, len(self._hooks)))

    # -- sending
    async def send(self, message: Message) -> None:
        """The app's `send`: through every registered hook."""
        await self._emit(message, len(self._hooks))

    async def _emit(self, message: Message, outside: int) -> None:
        kind = message["type"]
        hooks = self._hooks
        if kind == "http.response.start":
            self.started = True
            self.status = message["status"]
            for index in range(outside - 1, -1, -1):
                hooks[index][0](self, message)
        else:
            if kind == "http.response.body" and not message.get("more_body", False):
                self.finished = True
            for index in range(outside - 1, -1, -1):
                hook, every = hooks[index]
                if every:
                    hook(self, message)
        await self._send(message)

    async def answer(self, answer: Answer, outside: int | None = None) -> None:
        """Send `answer` through the hooks registered so far (or the first `outside` ones)."""
        count = len(self._hooks) if outside is None else outside
        await self._emit(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers},
            count,
        )
        await self._emit({"type": "http.response.body", "body": answer.body}, count)

    async def _unwind(self) -> None:
        frames = self._frames
        while frames:
            call, is_handler, outside = frames.pop()
            error = self.error
            if is_handler:
                if not isinstance(error, Exception):
                    continue
                try:
                    outcome = call(self, error)
                    if inspect.isawaitable(outcome):
                        outcome = await outcome
                    if outcome is None:
                        continue
                    self.error = None
                    if isinstance(outcome, Answer):
                        await self.answer(outcome, outside)
                except BaseException as raised:
                    self.error = raised
                continue
            try:
                result = call(self)
                if result is not None:
                    await result
            except BaseException as raised:
                self.error = raised


class Step(Protocol):
    """One part of the edge (see the module). A step that answers registers nothing first:
    its answer then passes through the steps outside it only."""

    name: str

    def enter(self, exchange: Exchange) -> Any: ...


class Edge:
    """The ordered steps of one app (outermost first). Steps are added while the app is being
    built; the middleware reads the list when the app starts."""

    def __init__(self, steps: Iterable[Step] = ()) -> None:
        self.steps: list[Step] = list(steps)

    def names(self) -> list[str]:
        return [step.name for step in self.steps]

    def add_outermost(self, step: Step) -> None:
        self.steps.insert(0, step)

    def add_innermost(self, step: Step) -> None:
        self.steps.append(step)

    def add_inside(self, step: Step, *outer: str) -> None:
        """Just inside the innermost of the steps named `outer`; outermost when none is
        present."""
        positions = [i for i, s in enumerate(self.steps) if s.name in outer]
        self.steps.insert(max(positions) + 1 if positions else 0, step)

    def step(self, name: str) -> Any:
        """The step called `name`, or None."""
        return next((s for s in self.steps if s.name == name), None)


class EdgeMiddleware:
    """The one layer: runs `edge`'s steps around the app (see the module)."""

    def __init__(
        self, app: ASGIApp, *, edge: Edge | None = None, steps: Iterable[Step] = ()
    ) -> None:
        self.app = app
        self.edge = edge if edge is not None else Edge(steps)
        self._plan: tuple[Callable[[Exchange], Any], ...] | None = None

    @property
    def steps(self) -> list[Step]:
        return self.edge.steps

    def _compile(self) -> tuple[Callable[[Exchange], Any], ...]:
        # Read once, when the first request comes: the steps are fixed by then.
        self._plan = tuple(step.enter for step in self.edge.steps)
        return self._plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        plan = self._plan or self._compile()
        exchange = Exchange(scope, receive, send)
        try:
            for enter in plan:
                answer = enter(exchange)
                if answer is not None:
                    if answer.__class__ is not Answer:
                        answer = await answer
                        if answer is None:
                            continue
                    await exchange.answer(answer)
                    break
            else:
                await self.app(exchange.scope, exchange.receive, exchange.send)
        except BaseException as error:
            # Unwound inside the `except`, so handlers that log it (`log.exception`) see it.
            exchange.error = error
            await exchange._unwind()
            if exchange.error is error:
                raise
            if exchange.error is not None:
                raise exchange.error  # noqa: B904 (a step raised it while unwinding)
            return
        if exchange._frames:
            await exchange._unwind()
            if exchange.error is not None:
                raise exchange.error


def edge_of(app: Any) -> Edge:
    """The app's edge (`app.state.edge`), added as one middleware (outermost at the time) the
    first time it is asked for."""
    edge: Edge | None = getattr(app.state, "edge", None)
    if edge is None:
        edge = Edge()
        app.state.edge = edge
        app.add_middleware(EdgeMiddleware, edge=edge)
    return edge
