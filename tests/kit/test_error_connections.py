"""An unexpected error in a route is a 500 problem sent like any other response: the keep-alive
connection it came on stays usable for the client's next request (real uvicorn, real socket)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import BackgroundTasks, FastAPI

from upstander.kit.app import ServiceSpec, create_service_app, make_router
from upstander.kit.settings import KitSettings


def _app() -> FastAPI:
    router = make_router("/demo/v1", tags=["demo"])

    @router.get("/boom", operation_id="boom", summary="Fails", description="Always fails.")
    async def boom() -> dict[str, str]:
        raise RuntimeError("a bug")

    @router.get(
        "/after", operation_id="after", summary="Fails late", description="Fails after answering."
    )
    async def after(background: BackgroundTasks) -> dict[str, str]:
        background.add_task(_fail_later)
        return {"status": "answered"}

    @router.get("/fine", operation_id="fine", summary="Works", description="Always works.")
    async def fine() -> dict[str, str]:
        return {"status": "fine"}

    settings = KitSettings(log_json=False, log_level="CRITICAL", relay_background=False)
    spec = ServiceSpec(name="demo", title="Demo", description="A tiny kit app.", routers=[router])
    return create_service_app(settings, spec)


async def _fail_later() -> None:
    raise RuntimeError("a bug after the response")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def base_url() -> Iterator[str]:
    """The tiny app served by uvicorn on a free port, in a thread."""
    port = _free_port()
    config = uvicorn.Config(
        _app(), host="127.0.0.1", port=port, log_level="critical", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_500_leaves_the_keep_alive_connection_usable(base_url: str) -> None:
    connections: list[object] = []
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        failed = client.get("/demo/v1/boom", extensions={"trace": _trace(connections)})
        after = client.get("/demo/v1/fine", extensions={"trace": _trace(connections)})

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["type"] == "https://upstander.dev/problems/internal-error"
    assert "a bug" not in failed.text
    assert failed.headers.get("connection", "").lower() != "close"
    assert failed.headers.get("x-request-id")
    assert after.status_code == 200 and after.json() == {"status": "fine"}
    # Both requests went over one connection: the second reused the first's.
    assert len(connections) == 1


def test_two_500s_in_a_row_on_one_connection_are_both_answered(base_url: str) -> None:
    connections: list[object] = []
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        statuses = [
            client.get("/demo/v1/boom", extensions={"trace": _trace(connections)}).status_code
            for _ in range(3)
        ]
    assert statuses == [500, 500, 500]
    assert len(connections) == 1


def test_an_error_after_a_whole_response_leaves_the_connection_usable(base_url: str) -> None:
    connections: list[object] = []
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        answered = client.get("/demo/v1/after", extensions={"trace": _trace(connections)})
        after = client.get("/demo/v1/fine", extensions={"trace": _trace(connections)})
    assert answered.status_code == 200 and answered.json() == {"status": "answered"}
    assert after.status_code == 200
    assert len(connections) == 1


def _trace(connections: list[object]) -> object:
    """An httpcore trace hook recording each newly opened connection."""

    def trace(event: str, info: dict[str, object]) -> None:
        if event == "connection.connect_tcp.complete":
            connections.append(info.get("return_value"))

    return trace
