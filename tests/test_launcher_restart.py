"""`make run` (scripts/run.py) with real processes: a service killed with SIGKILL is restarted
and healthy again within seconds while the others keep running; `UPSTANDER_<APP>_DATABASE_URL`
from the environment is used; and the supervisor's backoff and crash-loop cap, on processes
that die at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import launcher
import pytest
from launcher import (
    APPS,
    REPO_ROOT,
    CrashLoop,
    Platform,
    RestartPolicy,
    Supervisor,
    free_port,
    missing_apps,
    quiet_sink,
    sqlite_url,
    stop_process,
)

pytestmark = pytest.mark.processes

STARTED = re.compile(r"launcher \| (\w+) started \(pid (\d+)\)")
# On a loaded machine (2 cores shared by many) a service takes a few seconds to start.
BACK_WITHIN = 30.0


@dataclass
class RunningMakeRun:
    """`python scripts/run.py` as `make run` starts it, its output collected line by line."""

    process: subprocess.Popen[str]
    ports: dict[str, int]
    var_dir: Path
    lines: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic() of each line

    def pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.arrived.append(time.monotonic())
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> float:
        """When the first line matching `pattern` arrived (waiting for it if need be)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, line in enumerate(list(self.lines)):
                if re.search(pattern, line):
                    return self.arrived[index]
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        tail = "\n".join(self.lines[-40:])
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{tail}")

    def pids(self) -> dict[str, int]:
        """The latest pid the launcher reported for each app."""
        pids: dict[str, int] = {}
        for line in list(self.lines):
            found = STARTED.search(line)
            if found:
                pids[found.group(1)] = int(found.group(2))
        return pids

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it is only waiting for its parent to read its exit code.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def custom_cases_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("elsewhere") / "my-cases.db"


@pytest.fixture(scope="module")
def make_run(
    tmp_path_factory: pytest.TempPathFactory, custom_cases_db: Path
) -> Iterator[RunningMakeRun]:
    missing = missing_apps()
    if missing:
        pytest.skip("no runnable `python -m upstander.<app>` for: " + ", ".join(missing))
    var_dir = tmp_path_factory.mktemp("var")
    ports = {name: free_port() for name in APPS}
    env = {
        key: value
        for key, value in os.environ.items()
        # Only what this test sets: not a database or a port the shell happens to have.
        if not key.startswith("UPSTANDER_") or key.startswith("UPSTANDER_TEST_")
    }
    env.update({f"UPSTANDER_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env["UPSTANDER_CASES_DATABASE_URL"] = sqlite_url(custom_cases_db)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "run.py"), "--var-dir", str(var_dir)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningMakeRun(process, ports, var_dir)
    threading.Thread(target=running.pump, daemon=True).start()
    try:
        running.wait_for(r"Upstander is running", timeout=120)
        yield running
    finally:
        pids = running.pids()
        stop_process(process, grace=20)
        for pid in pids.values():  # nothing left behind, whatever the test did
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_demo_organisation_takes_reports_as_soon_as_the_banner_shows(
    make_run: RunningMakeRun,
) -> None:
    """First in the module: the banner waits until intake knows the demo organisation (its
    form answered 404 for a moment after every app was healthy, and a report sent then too)."""
    form = httpx.get(make_run.url("gateway") + "/intake/v1/forms/demo", timeout=10)

    assert form.status_code == 200, form.text
    assert form.json()["org"] == "demo"


def test_the_database_url_from_the_environment_is_used(
    make_run: RunningMakeRun, custom_cases_db: Path
) -> None:
    defaults = {path.name for path in make_run.var_dir.glob("*.db")}

    assert custom_cases_db.exists()
    assert custom_cases_db.stat().st_size > 0
    assert "cases.db" not in defaults  # nothing made in var/ for cases
    assert {"gateway.db", "intake.db", "training.db", "notify.db"} <= defaults
    assert any(str(custom_cases_db) in line for line in make_run.lines)  # the banner says so


def test_every_app_runs_with_large_freed_blocks_going_back_to_the_system(
    make_run: RunningMakeRun,
) -> None:
    """glibc's mmap threshold fixed at 128 KiB (launcher.MALLOC_TUNABLES, as the Dockerfile)."""
    for name, pid in make_run.pids().items():
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072" in environment, name


def test_a_service_killed_with_sigkill_is_back_and_healthy_while_the_others_kept_running(
    make_run: RunningMakeRun,
) -> None:
    before = make_run.pids()
    assert set(before) == set(APPS)
    others = {name: pid for name, pid in before.items() if name != "cases"}

    killed_at = time.monotonic()
    os.kill(before["cases"], signal.SIGKILL)
    make_run.wait_for(r"cases exited with code -9; restarting it", timeout=10)
    restarted_at = make_run.wait_for(rf"cases started \(pid (?!{before['cases']}\))", timeout=10)
    back_at = make_run.wait_for(r"cases is healthy again", timeout=BACK_WITHIN)
    after = make_run.pids()
    gateway_health = httpx.get(make_run.url("gateway") + "/healthz", timeout=10)

    assert after["cases"] != before["cases"] and _alive(after["cases"])
    assert _healthy(make_run.url("cases"))
    # The launcher's part (noticing, 0.5 s of backoff) takes about a second; the rest is the
    # service's own start (seconds; more on a machine many share).
    assert restarted_at - killed_at < 3.0
    assert back_at - killed_at < BACK_WITHIN
    assert {name: after[name] for name in others} == others  # never restarted
    assert all(_alive(pid) for pid in others.values())
    assert gateway_health.status_code == 200, gateway_health.text
    assert make_run.process.poll() is None  # `make run` itself kept going


def test_make_run_stops_every_process_on_sigterm(make_run: RunningMakeRun) -> None:
    # Last in the module: it stops the shared platform.
    pids = make_run.pids()
    make_run.process.send_signal(signal.SIGTERM)

    code = make_run.process.wait(timeout=30)

    assert code == 0
    assert not any(_alive(pid) for pid in pids.values())


# -- the supervisor on its own, with processes that die at once ----------------------------------


class DyingPlatform(Platform):
    """Every app is a process that exits with code 3 as soon as it starts."""

    def command(self, name: str) -> list[str]:
        return [self.python, "-c", "import sys; sys.exit(3)"]


def test_a_service_that_keeps_dying_is_restarted_with_growing_delays_then_given_up(
    tmp_path: Path,
) -> None:
    platform = DyingPlatform(
        var_dir=tmp_path, ports={"cases": free_port()}, apps=("cases",), sink=quiet_sink
    )
    log: list[str] = []
    policy = RestartPolicy(base_delay=0.1, max_delay=0.4, max_per_minute=4)
    platform.start()
    supervisor = Supervisor(platform, policy=policy, log=log.append)
    started = time.monotonic()
    try:
        with pytest.raises(CrashLoop) as gave_up:
            while time.monotonic() - started < 30:
                supervisor.poll()
                time.sleep(0.02)
    finally:
        supervisor.close()
        platform.stop(grace=2.0)

    delays = [float(m) for m in re.findall(r"restarting it in ([\d.]+) s", "\n".join(log))]
    assert delays == [0.1, 0.2, 0.4, 0.4]  # doubling, capped
    assert "after 4 restarts in a minute; giving up" in str(gave_up.value)
    assert sum("cases started" in line for line in log) == 4


def test_the_launcher_honours_settings_from_the_shell_and_env_file_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = "postgresql+asyncpg://upstander:secret@127.0.0.1:5432/upstander_cases"
    env_file = tmp_path / ".env"
    env_file.write_text(
        "UPSTANDER_TRAINING_DATABASE_URL=sqlite+aiosqlite:///elsewhere/training.db\n"
        "UPSTANDER_NOTIFY_URL=http://from-env-file:1\n"
        "UPSTANDER_INTAKE_PORT=9101\n"
    )
    monkeypatch.setattr(launcher, "ENV_FILE", env_file)
    for name in APPS:
        for variable in ("DATABASE_URL", "URL", "HOST", "PORT"):
            monkeypatch.delenv(f"UPSTANDER_{name.upper()}_{variable}", raising=False)
    monkeypatch.setenv("UPSTANDER_CASES_DATABASE_URL", custom)
    monkeypatch.setenv("UPSTANDER_NOTIFY_URL", "http://notify.internal:9000")  # the shell wins
    monkeypatch.setenv("UPSTANDER_EVENT_TRANSPORT", "nats")

    honoured = Platform(var_dir=tmp_path, honour_environment=True)
    isolated = Platform(var_dir=tmp_path).environment("gateway")
    env = honoured.environment("gateway")

    assert env["UPSTANDER_CASES_DATABASE_URL"] == custom
    assert env["UPSTANDER_TRAINING_DATABASE_URL"] == "sqlite+aiosqlite:///elsewhere/training.db"
    assert env["UPSTANDER_INTAKE_DATABASE_URL"] == sqlite_url(tmp_path / "intake.db")
    assert env["UPSTANDER_NOTIFY_URL"] == "http://notify.internal:9000"
    assert env["UPSTANDER_EVENT_TRANSPORT"] == "nats"
    assert honoured.ports["intake"] == 9101 and env["UPSTANDER_INTAKE_PORT"] == "9101"
    assert env["UPSTANDER_CASES_HOST"] == "127.0.0.1"  # unset: the launcher's default
    assert "secret" not in launcher.shown_url(custom)
    assert isolated["UPSTANDER_CASES_DATABASE_URL"] == sqlite_url(tmp_path / "cases.db")
    assert isolated["UPSTANDER_NOTIFY_URL"].startswith("http://127.0.0.1:")
