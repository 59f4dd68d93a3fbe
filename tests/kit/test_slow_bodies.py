"""The kit's body guard against slow clients, driven with raw ASGI messages: a body that stalls
or trickles is cut with a 408 problem, one source holds only so many requests with a body
still arriving, and nothing about a source is kept once its requests end. (The same against
real processes and sockets: tests/e2e/test_slow_clients.py.)"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstander.kit.errors import install_problem_handlers
from upstander.kit.http import BodyDeadline, BodyGuardMiddleware

FAST = BodyDeadline(timeout=0.2, min_rate=1000, max_seconds=5)


def _app(deadline: BodyDeadline = FAST, per_source: int = 0, inner: Any = None) -> Any:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    if inner is not None:
        app.add_middleware(inner)
    app.add_middleware(
        BodyGuardMiddleware, max_bytes=1_000_000, deadline=deadline, per_source=per_source
    )
    return app


def _scope(length: int, ip: str = "198.51.100.1") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "client": (ip, 40000),
        "server": ("test", 80),
        "state": {},
    }


def _body_then_stall(*chunks: bytes, every: float = 0.0) -> Receive:
    """A client that sends `chunks` (`every` seconds apart) and then nothing, ever."""
    queue = list(chunks)

    async def receive() -> Message:
        if queue:
            await asyncio.sleep(every)
            return {"type": "http.request", "body": queue.pop(0), "more_body": True}
        await asyncio.Event().wait()  # a stalled client: never another byte
        raise AssertionError("unreachable")

    return receive


async def _call(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[int, dict[str, str], Any]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body)


async def test_a_stalled_body_is_cut_with_a_408_problem_that_closes_the_connection():
    loop = asyncio.get_running_loop()
    started = loop.time()

    status, headers, problem = await _call(_app(), _scope(100), _body_then_stall(b"{" * 50))

    assert status == 408
    assert problem["type"] == "https://upstander.dev/problems/request-timeout"
    assert headers["connection"] == "close"
    assert 0.2 <= loop.time() - started < 2


async def test_a_body_arriving_at_the_minimum_rate_is_not_cut_even_past_the_timeout():
    chunks = [b" " * 100] * 6  # 100 bytes every 0.05 s: 2,000 B/s, twice the minimum rate
    chunks[-1] = b" " * 99 + b"1"
    queue = list(chunks)

    async def receive() -> Message:
        await asyncio.sleep(0.05)
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    status, _, answer = await _call(_app(), _scope(600), receive)

    assert status == 200
    assert answer == {"size": 600}


async def test_a_body_trickling_below_the_minimum_rate_is_cut():
    trickle = _body_then_stall(*([b" "] * 1000), every=0.02)  # 50 B/s against 1,000 B/s

    status, _, problem = await _call(_app(), _scope(1000), trickle)

    assert status == 408
    assert problem["status"] == 408


async def test_a_source_over_its_cap_gets_429_at_once_while_another_source_is_served():
    app = _app(deadline=BodyDeadline(timeout=0.5, min_rate=1000, max_seconds=5), per_source=2)
    stalled = [
        asyncio.ensure_future(_call(app, _scope(100), _body_then_stall(b"{"))) for _ in range(2)
    ]
    await asyncio.sleep(0.05)

    over, over_headers, problem = await _call(app, _scope(100), _body_then_stall(b"{"))
    other = await _call(app, _scope(2, ip="198.51.100.2"), _complete(b"{}"))
    cut = [status for status, _, _ in await asyncio.gather(*stalled)]

    assert over == 429
    assert problem["type"] == "https://upstander.dev/problems/rate-limited"
    assert over_headers["retry-after"] == "1"
    assert over_headers["connection"] == "close"
    assert other[0] == 200
    assert cut == [408, 408]


async def test_nothing_about_a_source_is_kept_once_its_requests_end():
    app = _app(per_source=3)
    await _call(app, _scope(2), _complete(b"{}"))  # builds the middleware stack
    guard = _find(app.middleware_stack, BodyGuardMiddleware)
    running = asyncio.ensure_future(_call(app, _scope(100), _body_then_stall(b"{")))
    await asyncio.sleep(0.05)
    held_while_arriving = len(guard.slots)

    await running

    assert held_while_arriving == 1
    assert len(guard.slots) == 0  # no entry, not even a zero, once the requests ended


async def test_a_408_raised_while_a_middleware_reads_the_body_is_a_408_not_a_500():
    class ReadsFirst:
        """Like the idempotency middleware: reads the whole body before the app runs."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            while (await receive()).get("more_body"):
                pass
            await self.app(scope, receive, send)

    status, headers, problem = await _call(
        _app(inner=ReadsFirst), _scope(100), _body_then_stall(b"{")
    )

    assert status == 408
    assert headers["connection"] == "close"
    assert problem["type"].endswith("/request-timeout")


def _complete(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def _find(app: Any, kind: type) -> Any:
    """The middleware instance of `kind` in a built Starlette middleware stack."""
    seen = 0
    while app is not None and seen < 50:
        if isinstance(app, kind):
            return app
        app = getattr(app, "app", None)
        seen += 1
    return None


@pytest.mark.parametrize("name", ["gateway", "intake", "cases", "training", "notify"])
def test_every_app_is_served_with_the_connection_bounds_from_its_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    monkeypatch.setenv("UPSTANDER_SERVER_LIMIT_CONCURRENCY", "321")
    monkeypatch.setenv("UPSTANDER_SERVER_TIMEOUT_KEEP_ALIVE_SECONDS", "7")

    importlib.import_module(f"upstander.{name}.__main__").main()

    assert served["limit_concurrency"] == 321
    assert served["timeout_keep_alive"] == 7
    assert served["proxy_headers"] is False
    assert served["access_log"] is False
