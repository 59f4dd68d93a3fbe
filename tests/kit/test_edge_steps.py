"""The kit's edge: one layer whose steps behave as nested middlewares would. A step's answer
passes through the hooks of the steps outside it only; the app's response through all of them,
innermost first; an error handler answers through the hooks outside it; exits run innermost
first whatever happened; an unhandled error still reaches the caller."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from upstander.kit.edge import Answer, EdgeMiddleware, Exchange


class Tag:
    """Adds `x-tag: <name>` to the response and records its exit in `log`."""

    def __init__(self, name: str, log: list[str], *, answer: bool = False) -> None:
        self.name = name
        self.log = log
        self.answer = answer

    def enter(self, exchange: Exchange) -> Any:
        if self.answer:
            return Answer(403, [(b"content-length", b"0")])
        exchange.on_start(self._start)
        exchange.on_exit(lambda _exchange: self.log.append(f"exit {self.name}"))
        return None

    def _start(self, _exchange: Exchange, message: Message) -> None:
        message["headers"] = [*message.get("headers", []), (b"x-tag", self.name.encode())]


class Waits:
    """A step that must wait (returns a coroutine) and then answers."""

    name = "waits"

    def enter(self, exchange: Exchange) -> Any:
        async def later() -> Answer:
            return Answer(429, [(b"content-length", b"0")])

        return later()


class Catches:
    name = "catches"

    def enter(self, exchange: Exchange) -> None:
        exchange.on_error(self._caught)

    @staticmethod
    def _caught(exchange: Exchange, error: Exception) -> Answer | None:
        if isinstance(error, ValueError) and not exchange.started:
            return Answer(418, [(b"content-length", b"0")])
        return None


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def failing_app(error: Exception) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    return app


async def call(app: Any) -> tuple[int, list[bytes]]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await app(scope, receive, send)
    start = sent[0]
    return start["status"], [v for k, v in start["headers"] if k == b"x-tag"]


async def test_the_apps_response_passes_every_hook_innermost_first_and_exits_unwind() -> None:
    log: list[str] = []
    app = EdgeMiddleware(ok_app, steps=[Tag("outer", log), Tag("inner", log)])

    status, tags = await call(app)

    assert (status, tags) == (200, [b"inner", b"outer"])
    assert log == ["exit inner", "exit outer"]


async def test_a_steps_answer_passes_only_the_steps_outside_it() -> None:
    log: list[str] = []
    steps = [Tag("outer", log), Tag("refuses", log, answer=True), Tag("inner", log)]
    app = EdgeMiddleware(ok_app, steps=steps)

    status, tags = await call(app)

    assert (status, tags) == (403, [b"outer"])
    assert log == ["exit outer"]  # the inner step never ran


async def test_a_step_that_waits_answers_too() -> None:
    log: list[str] = []
    app = EdgeMiddleware(ok_app, steps=[Tag("outer", log), Waits(), Tag("inner", log)])

    assert await call(app) == (429, [b"outer"])


async def test_an_error_handler_answers_through_the_steps_outside_it_only() -> None:
    log: list[str] = []
    steps = [Tag("outer", log), Catches(), Tag("inner", log)]
    app = EdgeMiddleware(failing_app(ValueError("boom")), steps=steps)

    status, tags = await call(app)

    assert (status, tags) == (418, [b"outer"])
    assert log == ["exit inner", "exit outer"]


async def test_an_error_no_step_takes_reaches_the_caller_after_every_exit() -> None:
    log: list[str] = []
    app = EdgeMiddleware(
        failing_app(KeyError("boom")), steps=[Tag("outer", log), Catches(), Tag("inner", log)]
    )

    with pytest.raises(KeyError):
        await call(app)
    assert log == ["exit inner", "exit outer"]
