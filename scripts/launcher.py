"""Start the gateway and the four services as separate processes, wait for them, stop them.

Shared by `make run` (scripts/run.py), the process tests (tests/test_processes.py) and the
benchmark (bench/gateway_overhead.py), so all three run the platform the same way.
(Not named `platform.py`: that would shadow the standard library's `platform` module for
every script in this folder.)
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

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "cases", "training", "notify")
# Services first, gateway last: the gateway's bootstrap prints the demo credentials.
APPS = (*SERVICES, "gateway")
DEFAULT_PORTS = {"gateway": 8000, "intake": 8001, "cases": 8002, "training": 8003, "notify": 8004}
HOST = "127.0.0.1"


def app_folder(name: str) -> Path:
    """The workspace member that holds an app: `gateway/` or `services/<name>/`."""
    return REPO_ROOT / "gateway" if name == "gateway" else REPO_ROOT / "services" / name


def migrations_dir(name: str) -> Path:
    return app_folder(name) / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def free_port() -> int:
    """A port nobody listens on right now (another process may still take it; good enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


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
    ) -> None:
        self.var_dir = Path(var_dir).resolve()
        self.ports = dict(ports or ports_from_environment())
        self.apps = tuple(apps)
        self.database_urls = {
            name: (database_urls or {}).get(name) or sqlite_url(self.var_dir / f"{name}.db")
            for name in self.apps
        }
        self.python = python or sys.executable
        self.extra_env = dict(extra_env or {})
        self.sink = sink
        self.children: dict[str, Child] = {}

    # -- environment -------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.ports[name]}"

    def environment(self, name: str) -> dict[str, str]:
        """One child's environment: where everyone lives, every database, dev mode."""
        env = dict(os.environ)
        env.setdefault("UPSTANDER_MODE", "dev")
        env.setdefault("UPSTANDER_MAIL_DIR", str(self.var_dir / "mail"))
        for other in self.ports:  # the launcher is about localhost; never listen wider
            env[f"UPSTANDER_{other.upper()}_HOST"] = HOST
        env["PYTHONUNBUFFERED"] = "1"
        for other, port in self.ports.items():
            env[f"UPSTANDER_{other.upper()}_PORT"] = str(port)
            env[f"UPSTANDER_{other.upper()}_URL"] = f"http://{HOST}:{port}"
        for other, database_url in self.database_urls.items():
            env[f"UPSTANDER_{other.upper()}_DATABASE_URL"] = database_url
        env.update(self.extra_env)
        return env

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
            [self.python, "-m", f"upstander.{name}"],
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
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
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
                    time.sleep(0.2)

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


def quiet_sink(name: str, line: str) -> None:
    """Discard output (the children's recent lines are still kept for error messages)."""


if __name__ == "__main__":  # pragma: no cover - a convenience for debugging the launcher
    with Platform(var_dir=REPO_ROOT / "var") as running:
        print("healthy:", ", ".join(running.children))
