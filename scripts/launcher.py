"""Start the gateway and the four services as separate processes, wait for them, restart one
that dies, stop them.

Shared by `make run` (scripts/run.py), the process tests (tests/test_processes.py) and the
benchmarks (bench/side_by_side.py, bench/gateway_overhead.py), so all of them run the platform
the same way.
(Not named `platform.py`: that would shadow the standard library's `platform` module for
every script in this folder.)

`make run` honours the environment (`Platform(honour_environment=True)`): every `UPSTANDER_*`
variable, of the shell or of the repository's `.env` (the shell wins, as in the apps' own
settings), reaches the children as set, and the launcher fills in only what is unset — SQLite
files in `var/`, the local ports and URLs, 127.0.0.1. Tests and the benchmark leave it off, so
their platforms stay on their own ports and temporary databases whatever the shell has set.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "cases", "training", "notify")
# Services first, gateway last: the gateway's bootstrap prints the demo credentials.
APPS = (*SERVICES, "gateway")
DEFAULT_PORTS = {"gateway": 8000, "intake": 8001, "cases": 8002, "training": 8003, "notify": 8004}
HOST = "127.0.0.1"
# How often `wait_healthy` asks: a refused connection costs nothing, and every tick slept
# past an app's readiness is start-up time (docs/performance.md).
HEALTH_POLL_SECONDS = 0.05
# The apps read it too (pydantic-settings, from their working directory: the repository).
ENV_FILE = REPO_ROOT / ".env"
# glibc's allocator hands every block of 128 KiB or more straight back to the system when it
# is freed. By default that bound rises to the largest such block freed so far (up to 32 MiB),
# and a large body, answer or document allocated after it stays in the heap once freed
# (docs/performance.md: 0.5 MB of cases after its OpenAPI document). The Dockerfile sets the
# same.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=131072"


def app_folder(name: str) -> Path:
    """The workspace member that holds an app: `gateway/` or `services/<name>/`."""
    return REPO_ROOT / "gateway" if name == "gateway" else REPO_ROOT / "services" / name


def migrations_dir(name: str) -> Path:
    return app_folder(name) / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def shown_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: print nothing of it
        return "(unreadable URL)"


def database_variable(name: str) -> str:
    return f"UPSTANDER_{name.upper()}_DATABASE_URL"


def free_port() -> int:
    """A port nobody listens on right now (another process may still take it; good enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def launch_environment(env_file: Path | None = None) -> dict[str, str]:
    """The environment `make run` honours: the `.env` file's `UPSTANDER_*` values under the
    shell's (pydantic-settings reads them in the same order)."""
    from dotenv import dotenv_values

    path = ENV_FILE if env_file is None else env_file
    from_file = dotenv_values(path) if path.is_file() else {}
    merged = {
        key: value
        for key, value in from_file.items()
        if key.startswith("UPSTANDER_") and value is not None
    }
    merged.update(os.environ)
    return merged


def ports_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    environ = os.environ if environ is None else environ
    return {
        name: int(environ.get(f"UPSTANDER_{name.upper()}_PORT", default))
        for name, default in DEFAULT_PORTS.items()
    }


def missing_apps() -> list[str]:
    """Apps whose package or `__main__` cannot be found yet (the tests skip on these)."""
    import importlib.util

    missing = []
    for name in APPS:
        try:
            spec = importlib.util.find_spec(f"upstander.{name}.__main__")
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            missing.append(name)
    return missing


@dataclass
class Child:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    recent: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


Sink = Callable[[str, str], None]


def stop_process(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; returns once the process is gone."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_sink(name: str, line: str) -> None:
    """Write a child's line prefixed with its name, aligned so the columns read well."""
    sys.stdout.write(f"{name:>8} | {line}\n")
    sys.stdout.flush()


class PlatformError(RuntimeError):
    pass


class Platform:
    """The five processes. `with Platform(...) as platform:` starts them and stops them."""

    def __init__(
        self,
        *,
        var_dir: Path,
        ports: Mapping[str, int] | None = None,
        database_urls: Mapping[str, str] | None = None,
        apps: Iterable[str] = APPS,
        python: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        sink: Sink = print_sink,
        honour_environment: bool = False,
    ) -> None:
        """`database_urls` given here win; then, with `honour_environment`, each
        `UPSTANDER_<APP>_DATABASE_URL` of the environment; else SQLite in `var_dir`."""
        self.var_dir = Path(var_dir).resolve()
        self.honour_environment = honour_environment
        base = self.base_environment()
        self.ports = dict(ports or ports_from_environment(base))
        self.apps = tuple(apps)
        given = database_urls or {}
        self.database_urls = {
            name: given.get(name)
            or (base.get(database_variable(name)) if honour_environment else None)
            or sqlite_url(self.var_dir / f"{name}.db")
            for name in self.apps
        }
        self.python = python or sys.executable
        self.extra_env = dict(extra_env or {})
        self.sink = sink
        self.children: dict[str, Child] = {}

    # -- environment -------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def base_environment(self) -> dict[str, str]:
        """What the children's environment starts from (read afresh for each start)."""
        return launch_environment() if self.honour_environment else dict(os.environ)

    def environment(self, name: str) -> dict[str, str]:
        """One child's environment: where everyone lives, every database, dev mode.

        With `honour_environment` a variable already set wins over the launcher's default
        (the ports are read from it too, in `ports_from_environment`); without, the launcher's
        ports, URLs, hosts and databases are imposed."""
        env = self.base_environment()
        env.setdefault("UPSTANDER_MODE", "dev")
        env.setdefault("UPSTANDER_MAIL_DIR", str(self.var_dir / "mail"))
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
        defaults: dict[str, str] = {}
        for other, port in self.ports.items():
            # The launcher is about localhost; never listen wider unless told to.
            defaults[f"UPSTANDER_{other.upper()}_HOST"] = HOST
            defaults[f"UPSTANDER_{other.upper()}_URL"] = f"http://{HOST}:{port}"
            env[f"UPSTANDER_{other.upper()}_PORT"] = str(port)
        for key, value in defaults.items():
            if self.honour_environment:
                env.setdefault(key, value)
            else:
                env[key] = value
        for other, database_url in self.database_urls.items():
            env[database_variable(other)] = database_url  # the environment's, when honoured
        env.update(self.extra_env)
        return env

    def command(self, name: str) -> list[str]:
        """The command line of one app."""
        return [self.python, "-OO", "-m", f"upstander.{name}"]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        (self.var_dir / "mail").mkdir(parents=True, exist_ok=True)
        busy = [f"{n}:{self.ports[n]}" for n in self.apps if port_in_use(self.ports[n])]
        if busy:
            raise PlatformError(
                "ports already in use (is the platform already running?): " + ", ".join(busy)
            )
        for name in self.apps:
            self.start_app(name)

    def start_app(self, name: str) -> None:
        """Start one app (again): tests stop and restart a service to prove nothing is lost."""
        process = subprocess.Popen(
            self.command(name),
            cwd=REPO_ROOT,
            env=self.environment(name),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C reaches the launcher only, which stops them in order.
            start_new_session=True,
        )
        child = Child(name=name, port=self.ports[name], process=process)
        child.pump = threading.Thread(
            target=self._pump, args=(child,), name=f"pump-{name}", daemon=True
        )
        child.pump.start()
        self.children[name] = child

    def stop_app(self, name: str, grace: float = 5.0) -> int:
        """Stop one app (SIGTERM, then SIGKILL after `grace`); return its exit code."""
        child = self.children[name]
        stop_process(child.process, grace)
        if child.pump is not None:
            child.pump.join(timeout=2.0)
        return int(child.process.returncode)

    def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            child.recent.append(line)
            self.sink(child.name, line)
        child.process.stdout.close()

    def dead(self) -> list[Child]:
        return [c for c in self.children.values() if c.process.poll() is not None]

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Poll each `/healthz` until it answers 200; fail early if a child exits."""
        deadline = time.monotonic() + timeout
        waiting = dict(self.children)
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                for child in self.dead():
                    raise PlatformError(self._death_notice(child))
                for name, child in list(waiting.items()):
                    try:
                        if client.get(child.url + "/healthz").status_code == 200:
                            del waiting[name]
                    except httpx.HTTPError:
                        pass
                if waiting and time.monotonic() > deadline:
                    raise PlatformError(
                        f"not healthy after {timeout:.0f} s: " + ", ".join(sorted(waiting))
                    )
                if waiting:
                    time.sleep(HEALTH_POLL_SECONDS)

    def wait_for_demo_form(self, timeout: float = 15.0) -> bool:
        """Whether intake serves the demo organisation's form within `timeout` seconds. On a
        first start intake learns of the organisation from the gateway's `org.created` event,
        a moment after every app is healthy; until then a report for it is answered 404."""
        url = self.url("gateway") + "/intake/v1/forms/demo"
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    return False
                time.sleep(HEALTH_POLL_SECONDS)

    def _death_notice(self, child: Child) -> str:
        tail = "\n".join(list(child.recent)[-20:])
        return f"{child.name} exited with code {child.process.returncode}:\n{tail}"

    def stop(self, grace: float = 5.0) -> dict[str, int]:
        """SIGTERM everyone (gateway first), SIGKILL whoever is left after `grace` seconds."""
        for child in reversed(list(self.children.values())):
            if child.process.poll() is None:
                try:
                    child.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for child in self.children.values():
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.sink(child.name, f"still running after {grace:.0f} s; killing it")
                child.process.kill()
                child.process.wait()
        for child in self.children.values():
            if child.pump is not None:
                child.pump.join(timeout=2.0)
        return {name: int(c.process.returncode) for name, c in self.children.items()}

    def __enter__(self) -> Platform:
        try:
            self.start()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def recent_lines(self, name: str) -> list[str]:
        child = self.children.get(name)
        return list(child.recent) if child else []


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor restarts a child that died: after `base_delay` seconds, doubling with
    each death up to `max_delay`, back to `base_delay` once a child has run `stable_after`
    seconds; and never more than `max_per_minute` restarts of one app in any 60 seconds (one
    more death in that minute is a crash loop: `CrashLoop`)."""

    base_delay: float = 0.5
    max_delay: float = 30.0
    max_per_minute: int = 5
    stable_after: float = 60.0


class CrashLoop(PlatformError):
    """An app died more often than its restart policy allows: something is wrong with it (its
    database, its settings) that restarting will not fix."""


@dataclass
class _Watch:
    started: float
    restarts: collections.deque[float] = field(default_factory=collections.deque)
    level: int = 0
    died: float | None = None
    due: float | None = None
    awaiting_health: bool = False


class Supervisor:
    """Keeps a started platform running: call `poll()` every half second or so. A child that
    died is restarted after a growing delay and reported healthy again once its `/healthz`
    answers; each step is logged through `log`. The other children are left alone."""

    def __init__(
        self,
        platform: Platform,
        *,
        policy: RestartPolicy | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.policy = policy or RestartPolicy()
        self.log = log or (lambda message: platform.sink("launcher", message))
        self.clock = clock
        now = clock()
        self.watches = {name: _Watch(started=now) for name in platform.children}
        self._http = httpx.Client(timeout=1.0)

    def close(self) -> None:
        self._http.close()

    def restarts(self, name: str) -> int:
        """Restarts of `name` in the last minute."""
        return len(self.watches[name].restarts)

    def poll(self) -> None:
        """One round over the children; raises `CrashLoop` when one dies once too often."""
        now = self.clock()
        for name, child in list(self.platform.children.items()):
            watch = self.watches.setdefault(name, _Watch(started=now))
            if watch.due is None and child.process.poll() is not None:
                self._schedule(name, child, watch, now)
            if watch.due is not None and now >= watch.due:
                watch.due = None
                watch.restarts.append(now)
                watch.started = now
                watch.awaiting_health = True
                self.platform.start_app(name)
                restarted = self.platform.children[name]
                self.log(f"{name} started (pid {restarted.process.pid}) on {restarted.url}")
            elif watch.awaiting_health and child.process.poll() is None:
                if self._healthy(child):
                    watch.awaiting_health = False
                    after = now - (watch.died or now)
                    self.log(f"{name} is healthy again, {after:.1f} s after it exited")

    def _schedule(self, name: str, child: Child, watch: _Watch, now: float) -> None:
        policy = self.policy
        code = child.process.returncode
        while watch.restarts and watch.restarts[0] <= now - 60.0:
            watch.restarts.popleft()
        if len(watch.restarts) >= policy.max_per_minute:
            raise CrashLoop(
                f"{name} exited with code {code} after {len(watch.restarts)} restarts in a "
                f"minute; giving up on it\n" + "\n".join(list(child.recent)[-20:])
            )
        if now - watch.started >= policy.stable_after:
            watch.level = 0  # it ran long enough: this death starts the backoff afresh
        delay = min(policy.base_delay * 2**watch.level, policy.max_delay)
        watch.level += 1
        watch.died = now
        watch.due = now + delay
        watch.awaiting_health = False
        self.log(
            f"{name} exited with code {code}; restarting it in {delay:g} s "
            f"(restart {len(watch.restarts) + 1} in the last minute, at most "
            f"{policy.max_per_minute})"
        )

    def _healthy(self, child: Child) -> bool:
        try:
            return self._http.get(child.url + "/healthz").status_code == 200
        except httpx.HTTPError:
            return False


def quiet_sink(name: str, line: str) -> None:
    """Discard output (the children's recent lines are still kept for error messages)."""


if __name__ == "__main__":  # pragma: no cover - a convenience for debugging the launcher
    with Platform(var_dir=REPO_ROOT / "var") as running:
        print("healthy:", ", ".join(running.children))
