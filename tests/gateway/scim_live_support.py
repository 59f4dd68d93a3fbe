"""A SCIM client for `scim2-client` and `scim2-tester` over plain httpx (their built-in engine
wants httpx2), and the gateway served on a real localhost port for them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from scim2_client import BaseSyncSCIMClient

from upstander.gateway.app import create_app
from upstander.gateway.settings import Settings


class HttpxSCIMClient(BaseSyncSCIMClient):
    """`scim2_client`'s synchronous client on an `httpx.Client` (base URL: `.../scim/v2`)."""

    def __init__(self, client: httpx.Client, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        try:
            url = self.client.build_request("GET", endpoint).url
        except httpx.InvalidURL:
            return False
        return (
            url.scheme == base.scheme
            and url.netloc == base.netloc
            and (url.raw_path.startswith(base.raw_path))
        )

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.client.request(method, url, **kwargs)


@contextmanager
def live_gateway(database_url: str, directory: Path) -> Iterator[str]:
    """The gateway under uvicorn on a free localhost port (scim2-tester is synchronous)."""
    application = create_app(
        Settings(
            database_url=database_url,
            log_json=False,
            log_level="WARNING",
            relay_background=False,
            auth_rate_limit_per_minute=100_000,
            auth_account_rate_limit_per_minute=100_000,
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
