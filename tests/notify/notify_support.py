"""Helpers of the notify tests that test modules import by name (`from notify_support import
running_app`): the service on a fresh database, and a free localhost port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import helpers
import pytest
from asgi_lifespan import LifespanManager

from upstander.kit.clock import Clock
from upstander.kit.testing import RoutingTransport
from upstander.notify.app import create_app
from upstander.notify.settings import Settings

SERVICE = "notify"


@asynccontextmanager
async def running_app(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    minter: helpers.TokenMinter,
    *,
    clock: Clock | None = None,
    routes: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Any]:
    """The service on `backend` (`test_backend`), on a fresh copy of the run's migrated
    template (its own migration on start then has nothing to do). Outgoing HTTP goes to the mock
    gateway (JWKS) and to `routes` (`host:port` → ASGI app); mail goes to files in a temporary
    directory; the delivery worker only runs when a test calls `run_once()`."""
    directory: Path = tmp_path_factory.mktemp(SERVICE)
    database_url = await helpers.fresh_database(SERVICE, directory, backend=backend)
    transport = RoutingTransport({"127.0.0.1:8000": minter.transport(), **(routes or {})})
    options: dict[str, Any] = {
        "database_url": database_url,
        "log_json": False,
        "log_level": "WARNING",
        "relay_background": False,
        "notify_worker_background": False,
        "mail_dir": str(directory / "mail"),
        **settings,
    }
    application = create_app(Settings(**options), transport=transport, clock=clock)
    try:
        async with LifespanManager(application):
            yield application
    finally:
        await helpers.drop_database(database_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
