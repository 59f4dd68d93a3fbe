"""A private NATS server with JetStream for one test: its own free port and store directory,
so tests never share a stream, and a server the test can stop and start again (the same
port and store) to play an outage. Needs the `nats-server` binary (Debian's 2.9 is enough).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NATS_SERVER = shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_info(host: str, port: int, timeout: float = 1.0) -> dict[str, object] | None:
    """The INFO a NATS server greets a client with, or None if nothing answers there."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            line = connection.makefile("rb").readline()
    except OSError:
        return None
    if not line.startswith(b"INFO "):
        return None
    info = json.loads(line[5:])
    return info if isinstance(info, dict) else None


class NatsServer:
    """`nats-server -js` on 127.0.0.1:<port> with its store in `store`."""

    def __init__(self, store: Path, port: int | None = None) -> None:
        if NATS_SERVER is None:
            raise RuntimeError("nats-server is not installed")
        self.store = store
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        assert NATS_SERVER is not None
        self.store.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            info = server_info("127.0.0.1", self.port)
            if info is not None and info.get("jetstream"):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nats-server did not answer with JetStream in time")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stored_bytes(self) -> bytes:
        """Everything the server wrote to disk, to look for what must not be there."""
        return b"".join(p.read_bytes() for p in sorted(self.store.rglob("*")) if p.is_file())


@contextmanager
def private_nats_server(store: Path) -> Iterator[NatsServer]:
    """A started private JetStream server (skips the test where `nats-server` is missing),
    stopped at the end of the block. Test modules wrap it in their own fixture."""
    if NATS_SERVER is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    server = NatsServer(store)
    server.start()
    try:
        yield server
    finally:
        server.stop()
