"""A PostgreSQL outage under a running app: a PostgreSQL server of the test's own (a temporary
cluster on a free port), the cases app served by uvicorn on it, then the server stopped and
frozen (SIGSTOP). Every call answers a 503 `database-unavailable` problem with `Retry-After`
within 5 s, never a 500 and never a hang; once the server is back the same app serves again,
without a restart. The server is removed whatever happens; the module takes well under 60 s."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from helpers import TokenMinter

from upstander.cases.app import create_app
from upstander.cases.settings import Settings

pytestmark = pytest.mark.processes

DEADLINE = 5.0  # seconds a call may take while the database is down
UNAVAILABLE = "https://upstander.dev/problems/database-unavailable"
USER = "upstander"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path | None:
    """The folder of `initdb` and `postgres`: Debian's versioned one, else whatever is on PATH."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "postgres").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _children(pid: int) -> list[int]:
    """The processes `pid` started (PostgreSQL's backends each run in a session of their own,
    so a process group signal would miss them)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


class PostgresServer:
    """A throwaway PostgreSQL cluster: made in a temporary folder, started on `port`, stopped,
    frozen and thawed at will, and removed by `remove()`. As root it runs as `postgres`
    (initdb refuses root)."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            account = pwd.getpwnam(self.user)  # KeyError: no such account (the fixture skips)
        self.root = Path(tempfile.mkdtemp(prefix="upstander-pg-"))
        if self.user is not None:
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen: list[int] = []

    def init(self) -> None:
        subprocess.run(
            [
                str(self.binaries / "initdb"),
                *("-D", str(self.data), "-U", USER, "-A", "trust"),
                *("-E", "UTF8", "--locale=C", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
            user=self.user,
        )

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binaries / "postgres"),
                    *("-D", str(self.data), "-p", str(self.port), "-k", str(self.root)),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"),
                    # A disposable cluster: durability would only cost time.
                    *("-c", "fsync=off", "-c", "synchronous_commit=off"),
                    *("-c", "full_page_writes=off"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError("PostgreSQL exited:\n" + self.log_tail())
            try:
                connection = await asyncpg.connect(
                    host="127.0.0.1", port=self.port, user=USER, database="postgres", timeout=2
                )
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("PostgreSQL never answered:\n" + self.log_tail()) from None
                await asyncio.sleep(0.2)
            else:
                await connection.close()
                return

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, then new connections are refused."""
        self.thaw()
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: connections are accepted by the kernel and
        then nothing answers, as with a hung host."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)  # first, so that it starts no one new
        self.frozen = [self.process.pid]
        for pid in _children(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                self.frozen.append(pid)

    def thaw(self) -> None:
        for pid in reversed(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def remove(self) -> None:
        self.thaw()
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown; the data goes anyway
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for pid in _children(self.process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, postgres) on this machine")
    try:
        server = PostgresServer(binaries)
    except KeyError:
        pytest.skip("running as root and there is no `postgres` account to run PostgreSQL as")
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@dataclass
class Outage:
    """The server, the app serving on it, and what a caller needs."""

    postgres: PostgresServer
    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]
    client: httpx.AsyncClient
    headers: dict[str, str]
    background: set[str]  # the app's background loops (relay, schedulers), by task name

    # A list route, a read of one resource and a write with a body.
    calls: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
        ("GET", "/cases/v1/cases", None),
        ("GET", "/cases/v1/settings", None),
        ("PUT", "/cases/v1/settings", {"acknowledge_days": 5}),
    )

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = await self.client.request(method, path, json=body, headers=self.headers)
        return response, time.monotonic() - started

    async def serving(self, timeout: float = 20.0) -> list[httpx.Response]:
        """Every call, once they all succeed (the app is never restarted)."""
        deadline = time.monotonic() + timeout
        while True:
            responses = [(await self.call(*call))[0] for call in self.calls]
            if all(response.status_code == 200 for response in responses):
                return responses
            if time.monotonic() > deadline:
                return responses
            await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
async def outage(postgres: PostgresServer) -> AsyncIterator[Outage]:
    await postgres.wait_ready()
    admin = await asyncpg.connect(
        host="127.0.0.1", port=postgres.port, user=USER, database="postgres"
    )
    try:
        await admin.execute("CREATE DATABASE cases")
    finally:
        await admin.close()

    minter = TokenMinter()
    # The app as it runs in production, background loops (relay, deadlines, attachment
    # fetcher) included: they must live through the outage too.
    settings = Settings(
        database_url=postgres.url("cases"),
        log_json=False,
        log_level="WARNING",
        relay_poll_seconds=0.5,
    )
    app = create_app(settings, transport=minter.transport())
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError("the cases app did not start")
            await asyncio.sleep(0.1)
        token = minter.mint(org=uuid.uuid4(), roles=["admin"])
        background = _background_tasks()
        assert background, "the app runs no background loop"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Outage(
                postgres=postgres,
                app=app,
                server=server,
                task=task,
                client=client,
                headers={"Authorization": f"Bearer {token}"},
                background=background,
            )
    finally:
        postgres.thaw()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture(autouse=True)
async def database_up(outage: Outage) -> AsyncIterator[None]:
    """Each test starts with the server up and the app serving, and leaves it thawed."""
    outage.postgres.thaw()
    if not outage.postgres.running:
        outage.postgres.start()
        await outage.postgres.wait_ready()
    responses = await outage.serving()
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    try:
        yield
    finally:
        outage.postgres.thaw()


def _background_tasks() -> set[str]:
    """The named tasks running now: the app's background loops (requests' tasks are unnamed)."""
    return {
        task.get_name()
        for task in asyncio.all_tasks()
        if not task.done() and not task.get_name().startswith("Task-")
    }


def _assert_unavailable(response: httpx.Response, elapsed: float, what: str) -> None:
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", what
    assert response.headers.get("retry-after") == "5", what
    assert response.json()["type"] == UNAVAILABLE, what
    assert elapsed < DEADLINE, f"{what} took {elapsed:.1f} s"


async def test_stopped_database_answers_503_problems_within_5_seconds(outage: Outage) -> None:
    outage.postgres.stop()

    for method, path, body in outage.calls:
        response, elapsed = await outage.call(method, path, body)
        _assert_unavailable(response, elapsed, f"{method} {path}")
    started = time.monotonic()
    ready = await outage.client.get("/readyz")
    assert ready.status_code == 503
    assert time.monotonic() - started < DEADLINE


async def test_app_serves_again_once_the_stopped_database_starts(outage: Outage) -> None:
    outage.postgres.stop()
    response, _ = await outage.call(*outage.calls[0])
    assert response.status_code == 503

    outage.postgres.start()
    await outage.postgres.wait_ready()
    responses = await outage.serving()

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert (await outage.client.get("/readyz")).status_code == 200
    assert not outage.task.done()  # the same server, never restarted
    assert outage.background <= _background_tasks()  # and its loops lived through it


async def test_frozen_database_answers_503_problems_within_5_seconds(outage: Outage) -> None:
    outage.postgres.freeze()

    async def ready() -> tuple[int, float]:
        started = time.monotonic()
        response = await outage.client.get("/readyz")
        return response.status_code, time.monotonic() - started

    # Every kind of call, a burst of many callers and the readiness probe, all at once: each
    # answers within the deadline on its own, none waits behind another.
    calls = [*outage.calls, *([outage.calls[0]] * 8)]
    *answers, (ready_status, ready_elapsed) = await asyncio.gather(
        *(outage.call(*call) for call in calls), ready()
    )
    for (method, path, _), (response, elapsed) in zip(calls, answers, strict=True):
        _assert_unavailable(response, elapsed, f"{method} {path}")
    assert ready_status == 503
    assert ready_elapsed < DEADLINE


async def test_app_serves_again_once_the_frozen_database_resumes(outage: Outage) -> None:
    outage.postgres.freeze()
    response, elapsed = await outage.call(*outage.calls[2])
    _assert_unavailable(response, elapsed, "write while frozen")

    outage.postgres.thaw()
    responses = await outage.serving()

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert (await outage.client.get("/readyz")).status_code == 200
    assert not outage.task.done()
    assert outage.background <= _background_tasks()
