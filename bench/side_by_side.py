"""`make bench`: Upstander next to a reference, in one table (docs/performance.md).

Starts what it needs on free loopback ports with throw-away databases (SQLite files in a
temporary folder; PostgreSQL databases made and dropped on the local server), nginx with a
generated configuration in the same folder (never the system's), and measures with wrk
(`-t1 -c16`; a 1 s warm-up, then `--rounds` alternating runs per target over `--seconds`, the
median kept), or, without wrk, the Python load generator of
bench/gateway_overhead.py. Rows (`--only` selects some, comma-separated):

    gateway   GET /training/v1/xapi/about through the gateway vs through nginx (one worker,
              proxying to the same training process), and the service direct
    db        GET /training/v1/courses (empty) on the service vs bench/bare_courses.py (bare
              FastAPI + async SQLAlchemy, same query, same database), SQLite and PostgreSQL
    edge      GET /training/v1/courses through nginx with deploy/nginx/ (straight to the
              service) vs through the gateway
    startup   the platform as `make run` starts it, to healthy: first start (no bytecode
              cache, empty databases) and installed (cache and databases at head), with
              where the time goes (interpreter and imports, migrations, the rest)
    memory    RSS of every app at idle; intake's after 3,000 reports
    flood     report -> case -> inbox notice at idle (p50/p95); a 1,000-report flood: how
              long after its last report the last case opens

It asserts nothing. Needs nginx and wrk for the like-for-like rows (`apt-get install
nginx-light wrk`); without nginx the nginx rows say so, without wrk the Python generator is
used (slower than the servers it measures: compare ratios, not absolute figures).

    python bench/side_by_side.py [--only gateway,db] [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from launcher import (  # noqa: E402
    APPS,
    Platform,
    free_port,
    missing_apps,
    quiet_sink,
    stop_process,
)
from throwaway_nginx import (  # noqa: E402
    find_nginx,
    install_deploy_nginx,
    run_nginx,
    server_conf,
)

ROWS = ("gateway", "db", "edge", "startup", "memory", "flood")
ORG = "demo"
ADMIN = "admin@demo.example"
PG_ADMIN_URL = os.environ.get(
    "UPSTANDER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# -- results -------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    note: str = ""

    def latency(self) -> str:
        return f"{self.p50_ms:.1f}/{self.p99_ms:.1f}"


@dataclass
class Row:
    path: str
    upstander: str
    reference: str
    ratio: str
    latency: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  -> {row.path}: {row.upstander} | {row.reference} | {row.ratio} | {row.latency}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  .. {text}")

    def table(self) -> str:
        head = ("path", "Upstander", "reference", "ratio", "p50/p99 ms")
        cells = [head, *((r.path, r.upstander, r.reference, r.ratio, r.latency) for r in self.rows)]
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "|".join("---" for _ in head) + "|")
        out = "\n".join(lines)
        if self.notes:
            out += "\n\n" + "\n".join(f"- {n}" for n in self.notes)
        return out


def say(message: str) -> None:
    print(message, flush=True)


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs else "n/a"


# -- load generation -----------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Load:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return Load(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        errors=int(bad.group(1)) if bad else 0,
        note=errors.group(0) if errors else "",
    )


def compare(targets: dict[str, str], token: str, args: argparse.Namespace) -> dict[str, Load]:
    """Each target in turn, `args.rounds` times (A B C A B C ...), `seconds / rounds` each, and
    the median round of each: on a shared machine, load that comes and goes then falls on
    every target alike, and the ratios stay meaningful."""
    rounds: dict[str, list[Load]] = {name: [] for name in targets}
    slice_seconds = max(1.0, args.seconds / args.rounds)
    for index in range(args.rounds):
        for name, url in targets.items():
            rounds[name].append(load(url, token, args, slice_seconds, warm_up=index == 0))
    return {name: _median(results) for name, results in rounds.items()}


def _median(results: list[Load]) -> Load:
    ordered = sorted(results, key=lambda r: r.rps)
    middle = ordered[len(ordered) // 2]
    return Load(
        rps=middle.rps,
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
        note="; ".join(sorted({r.note for r in results if r.note})),
    )


def load(
    url: str,
    token: str,
    args: argparse.Namespace,
    seconds: float | None = None,
    *,
    warm_up: bool = True,
) -> Load:
    """`connections` concurrent keep-alive connections for `seconds`, after a 1 s warm-up."""
    seconds = seconds or args.seconds
    if args.wrk:
        headers = ["-H", f"Authorization: Bearer {token}"] if token else []
        base = [args.wrk, "-t1", f"-c{args.connections}", *headers, "--latency", url]
        if warm_up:
            subprocess.run([*base[:3], "-d1s", *base[3:]], capture_output=True, check=False)
        done = subprocess.run(
            [*base[:3], f"-d{seconds:g}s", *base[3:]], capture_output=True, text=True, check=False
        )
        return parse_wrk(done.stdout)
    command = [
        sys.executable,
        str(BENCH / "gateway_overhead.py"),
        "load",
        url,
        "--token",
        token,
        "-n",
        "100000000",
        "-c",
        str(args.connections),
        "--max-seconds",
        str(seconds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return Load(0.0, float("nan"), float("nan"), note=done.stderr[-300:])
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], r["first_error"])


def probe(url: str, token: str) -> str:
    """'' when `url` answers 2xx with the token, else what it answered."""
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}"
    return "" if response.status_code < 300 else f"{response.status_code} {response.text[:160]}"


# -- processes -----------------------------------------------------------------------------


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@contextlib.contextmanager
def process(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    child = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        try:
            wait_port(port)
        except RuntimeError as error:
            child.kill()
            output = child.communicate()[1][-500:]
            raise RuntimeError(f"{command[0]} did not start: {output!r}") from error
        yield
    finally:
        stop_process(child)


@contextlib.contextmanager
def nginx(args: argparse.Namespace, conf: Path, port: int) -> Iterator[None]:
    with run_nginx(args.nginx, conf, port):
        yield


def simple_proxy_conf(folder: Path, port: int, upstream_port: int) -> Path:
    """nginx as a plain reverse proxy to one app, with keep-alive to it."""
    http = f"""    upstream app {{
        server 127.0.0.1:{upstream_port};
        keepalive 32;
    }}"""
    server = """        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }"""
    return server_conf(folder, port, http, server)


def edge_conf(folder: Path, port: int, ports: dict[str, int]) -> Path:
    """deploy/nginx/ as shipped, with the apps' addresses and its folder rewritten."""
    copy = install_deploy_nginx(folder, ports)
    http = f"    include {copy}/upstreams.conf;\n    include {copy}/http.conf;"
    server = f"        include {copy}/routes.conf;"
    return server_conf(folder, port, http, server)


def token_for(gateway: str, password: str) -> str:
    response = httpx.post(
        gateway + "/auth/token",
        data={"grant_type": "password", "username": ADMIN, "password": password, "org": ORG},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def bytecode_env(cache: Path) -> dict[str, str]:
    """Let the children keep compiled bytecode (in `cache`, outside the tree), as an
    installed platform does; an empty PYTHONDONTWRITEBYTECODE is unset for Python."""
    return {"PYTHONPYCACHEPREFIX": str(cache), "PYTHONDONTWRITEBYTECODE": ""}


# -- PostgreSQL ----------------------------------------------------------------------------


async def _pg(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def pg_database(name: str) -> str | None:
    """A new empty database on the local server, as a SQLAlchemy URL; None when none answers."""
    from sqlalchemy.engine import make_url

    try:
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # no server, no rights: the PostgreSQL rows are skipped
        say(f"no PostgreSQL at {PG_ADMIN_URL.split('@')[-1]}: {type(error).__name__}")
        return None
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def drop_pg_database(name: str) -> None:
    with contextlib.suppress(Exception):
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- the rows ------------------------------------------------------------------------------


def row_gateway(args: argparse.Namespace, platform: Platform, token: str, report: Report) -> None:
    path = "/training/v1/xapi/about"
    say(f"[gateway] GET {path}: gateway, nginx -> training, training direct")
    targets = {
        "gateway": platform.url("gateway") + path,
        "direct": platform.url("training") + path,
    }
    if not args.nginx:
        report.note("gateway row: no nginx; only the gateway and the service direct")
        results = compare(targets, token, args)
        gw, direct = results["gateway"], results["direct"]
        report.add(
            Row(
                f"`GET {path}` gateway vs service direct (no nginx)",
                f"{gw.rps:,.0f} req/s",
                f"direct {direct.rps:,.0f} req/s",
                ratio(gw.rps, direct.rps),
                f"gw {gw.latency()} · direct {direct.latency()}",
            )
        )
        return
    port = free_port()
    conf = simple_proxy_conf(args.folder / "nginx-plain", port, platform.ports["training"])
    with nginx(args, conf, port):
        targets["nginx"] = f"http://127.0.0.1:{port}{path}"
        for name, url in targets.items():
            if problem := probe(url, token):
                report.note(f"gateway row: {name} answered {problem}")
        order = ("gateway", "nginx", "direct")
        results = compare({name: targets[name] for name in order}, token, args)
        for name in order:
            say(
                f"    {name:<8} {results[name].rps:>8,.0f} req/s  p50/p99 {results[name].latency()}"
            )
    gw, ngx, direct = results["gateway"], results["nginx"], results["direct"]
    report.add(
        Row(
            f"cheap authenticated endpoint `GET {path}`, gateway vs nginx (c{args.connections})",
            f"{gw.rps:,.0f} req/s",
            f"nginx {ngx.rps:,.0f} req/s (direct {direct.rps:,.0f})",
            ratio(gw.rps, ngx.rps),
            f"gw {gw.latency()} · nginx {ngx.latency()} · direct {direct.latency()}; "
            f"gateway adds {gw.p50_ms - direct.p50_ms:+.1f} ms p50",
        )
    )
    for name, result in results.items():
        if result.errors or result.note:
            report.note(f"gateway row, {name}: {result.errors} non-2xx {result.note}")


def _bare_courses(
    args: argparse.Namespace, database_url: str, org_id: str, service_url: str, token: str
) -> tuple[Load, Load, Load]:
    """(service, bare) at c16, and the service at c1."""
    port = free_port()
    env = {**os.environ, "BARE_DATABASE_URL": database_url, "BARE_ORG_ID": org_id}
    path = "/training/v1/courses"
    command = [sys.executable, str(BENCH / "bare_courses.py"), "--port", str(port)]
    with process(command, port, env=env):
        bare_url = f"http://127.0.0.1:{port}{path}"
        for url in (service_url + path, bare_url):
            if problem := probe(url, token):
                say(f"    {url} answered {problem}")
        both = compare({"service": service_url + path, "bare": bare_url}, token, args)
        service, bare = both["service"], both["bare"]
    saved = args.connections
    args.connections = 1
    try:
        single = load(service_url + path, token, args, seconds=min(args.seconds, 3))
    finally:
        args.connections = saved
    return service, bare, single


def row_db(args: argparse.Namespace, platform: Platform, token: str, report: Report) -> None:
    org_id = str(uuid.UUID(str(claims(token)["org"])))
    say("[db] GET /training/v1/courses on SQLite: service vs bare FastAPI + SQLAlchemy")
    service, bare, single = _bare_courses(
        args, platform.database_urls["training"], org_id, platform.url("training"), token
    )
    _db_row(report, "SQLite", service, bare, single)
    name = f"upstander_bench_{uuid.uuid4().hex[:8]}_training"
    database = pg_database(name)
    if database is None:
        report.note("db row: no PostgreSQL; the PostgreSQL row is skipped")
        return
    try:
        say("[db] ... on PostgreSQL (asyncpg): a second training process on its own database")
        ports = dict(platform.ports)
        ports["training"] = free_port()
        with Platform(
            var_dir=args.folder / "pg-training",
            ports=ports,
            apps=("training",),
            database_urls={"training": database},
            sink=quiet_sink,
        ) as pg:
            service, bare, single = _bare_courses(args, database, org_id, pg.url("training"), token)
        _db_row(report, "PostgreSQL", service, bare, single)
    finally:
        drop_pg_database(name)


def _db_row(report: Report, backend: str, service: Load, bare: Load, single: Load) -> None:
    say(
        f"    service {service.rps:,.0f} req/s, bare {bare.rps:,.0f} req/s, "
        f"c1 {single.p50_ms:.1f} ms"
    )
    report.add(
        Row(
            f"authenticated list from the DB `GET /training/v1/courses` (empty), {backend}",
            f"{service.rps:,.0f} req/s; c1 p50 {single.p50_ms:.1f} ms",
            f"bare FastAPI + async SQLAlchemy {bare.rps:,.0f} req/s",
            ratio(service.rps, bare.rps),
            f"svc {service.latency()} · bare {bare.latency()}",
        )
    )


def row_edge(args: argparse.Namespace, platform: Platform, token: str, report: Report) -> None:
    path = "/training/v1/courses"
    if not args.nginx:
        report.note("edge row: no nginx")
        return
    say(f"[edge] GET {path}: nginx with deploy/nginx/ (straight to training) vs the gateway")
    port = free_port()
    conf = edge_conf(args.folder / "nginx-edge", port, platform.ports)
    with nginx(args, conf, port):
        edge_url = f"http://127.0.0.1:{port}{path}"
        if problem := probe(edge_url, token):
            report.note(f"edge row: nginx answered {problem}")
        both = compare({"edge": edge_url, "gateway": platform.url("gateway") + path}, token, args)
        edge, gw = both["edge"], both["gateway"]
    say(f"    edge {edge.rps:,.0f} req/s, gateway {gw.rps:,.0f} req/s")
    report.add(
        Row(
            f"production edge `GET {path}`: gateway vs nginx deploy/nginx/ -> service",
            f"gateway {gw.rps:,.0f} req/s",
            f"nginx edge {edge.rps:,.0f} req/s",
            ratio(gw.rps, edge.rps),
            f"gw {gw.latency()} · edge {edge.latency()}",
        )
    )


# -- start-up ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _healthy_times(
    platform: Platform, began: float, timeout: float = 180.0
) -> dict[str, tuple[float, float]]:
    """Each app's (seconds from `began` to its first 200 on /healthz, polled every 20 ms, and
    the CPU seconds it had used by then)."""
    times: dict[str, tuple[float, float]] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while len(times) < len(platform.children) and time.monotonic() < deadline:
            for child in platform.dead():
                raise RuntimeError(f"{child.name} exited: {list(child.recent)[-5:]}")
            for name, child in platform.children.items():
                if name in times:
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(child.url + "/healthz").status_code == 200:
                        times[name] = (time.monotonic() - began, cpu_seconds(child.process.pid))
            time.sleep(0.02)
    return times


def _start_once(var_dir: Path, cache: Path) -> tuple[float, dict[str, tuple[float, float]], float]:
    """Start the platform as `make run` does; (seconds to all healthy with our 20 ms poll,
    per app (seconds, CPU seconds), seconds as the launcher's `wait_healthy` saw it)."""
    ports = {name: free_port() for name in APPS}
    platform = Platform(
        var_dir=var_dir, ports=ports, sink=quiet_sink, extra_env=bytecode_env(cache)
    )
    began = time.monotonic()
    try:
        platform.start()
        times = _healthy_times(platform, began)
        platform.wait_healthy(timeout=60)
        launcher_saw = time.monotonic() - began
    finally:
        platform.stop()
    return max(t for t, _ in times.values()), times, launcher_saw


_IMPORT_PROBE = """
import time
t = time.process_time()
import upstander.{app}.app
print(time.process_time() - t)
"""

_MIGRATE_PROBE = """
import asyncio, sys, time
sys.path.insert(0, "scripts")
from launcher import migrations_dir
from upstander.kit.migrations import upgrade_to_head
t = time.process_time()
asyncio.run(upgrade_to_head(sys.argv[1], migrations_dir("{app}")))
print(time.process_time() - t)
"""


def _cpu(code: str, cache: Path, *extra: str) -> float:
    """CPU seconds of `code` (what it prints), or of the whole interpreter for `pass`."""
    env = {**os.environ, **bytecode_env(cache)}
    before = os.times()
    done = subprocess.run(
        [sys.executable, "-c", code, *extra],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    after = os.times()
    if done.returncode != 0:
        say(f"    probe failed: {done.stderr[-300:]}")
        return float("nan")
    if code == "pass":
        return (after.children_user + after.children_system) - (
            before.children_user + before.children_system
        )
    return float(done.stdout.strip().splitlines()[-1])


def row_startup(args: argparse.Namespace, report: Report) -> None:
    say("[startup] first start (no bytecode cache, empty databases), then installed")
    folder = args.folder / "startup"
    var_dir, cache = folder / "var", folder / "pycache"
    first, first_apps, _ = _start_once(var_dir, cache)
    say(
        f"    first start {first:.1f} s: "
        + ", ".join(f"{n} {s:.1f} s ({c:.1f} s CPU)" for n, (s, c) in first_apps.items())
    )
    runs = [_start_once(var_dir, cache) for _ in range(2)]
    installed, per_app, launcher_saw = min(runs, key=lambda r: r[0])
    say(
        f"    installed {installed:.1f} s (launcher saw {launcher_saw:.1f} s): "
        + ", ".join(f"{n} {s:.1f} s ({c:.1f} s CPU)" for n, (s, c) in per_app.items())
    )
    say("    CPU breakdown, one app at a time: interpreter, imports, migrations")
    interpreter = _cpu("pass", cache)
    lines = []
    total_cpu = sum(c for _, c in per_app.values())
    first_cpu = sum(c for _, c in first_apps.values())
    for app in APPS:
        imports = _cpu(_IMPORT_PROBE.format(app=app), cache)
        database = Platform(var_dir=var_dir, apps=(app,)).database_urls[app]
        at_head = _cpu(_MIGRATE_PROBE.format(app=app), cache, database)
        fresh_db = folder / f"fresh-{app}.db"
        fresh = _cpu(_MIGRATE_PROBE.format(app=app), cache, f"sqlite+aiosqlite:///{fresh_db}")
        seconds, cpu = per_app[app]
        rest = cpu - interpreter - imports - at_head
        lines.append(
            f"{app}: healthy after {seconds:.1f} s having used {cpu:.2f} s CPU = interpreter "
            f"{interpreter:.2f} + imports {imports:.2f} + migrations at head {at_head:.2f} + "
            f"app start-up and /healthz {rest:.2f}; migrations of an empty database "
            f"{fresh:.2f} s CPU; first start {first_apps[app][1]:.2f} s CPU"
        )
        say("    " + lines[-1])
    cores = os.cpu_count() or 1
    report.add(
        Row(
            "`make run`-style start-up to healthy (all five apps)",
            f"installed {installed:.1f} s ({total_cpu:.1f} s CPU)",
            f"first start {first:.1f} s ({first_cpu:.1f} s CPU)",
            "goal < 5 s",
            f"CPU / {cores} cores = {total_cpu / cores:.1f} s; launcher saw {launcher_saw:.1f} s",
        )
    )
    for line in lines:
        report.note("start-up, " + line)


# -- memory and the flood ------------------------------------------------------------------


def _db_path(platform: Platform, app: str) -> str:
    return platform.database_urls[app].split("///", 1)[1]


def _query(path: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return list(connection.execute(sql, params).fetchall())
    finally:
        connection.close()


def _when(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def _report_body(index: int, anonymous: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "org": ORG,
        "mode": "anonymous" if anonymous else "identified",
        "description": f"Bench report {index}: shouted at during the volunteer briefing.",
        "categories": ["sexual_harassment"],
    }
    return body


RETRIES_AFTER_429 = 3
SOURCE_CONNECTIONS = 16


@dataclass
class Posted:
    accepted: dict[str, float] = field(default_factory=dict)  # report_id -> time of its 201
    failures: dict[str, int] = field(default_factory=dict)  # by kind
    retried: int = 0  # answers 429, retried after their Retry-After


async def _post_reports(
    gateway: str, token: str, count: int, concurrency: int, *, anonymous: bool = False
) -> Posted:
    posted = Posted()
    accepted, failures = posted.accepted, posted.failures
    gate = asyncio.Semaphore(concurrency)
    headers = {} if anonymous else {"authorization": f"Bearer {token}"}
    # Reporters come from many addresses: each group of SOURCE_CONNECTIONS connections sends
    # from an address of its own on loopback (127.0.0.2, .3, ...), so that the gateway's cap
    # per address (20 requests whose bodies are still arriving) is one source's, as in a real
    # flood, not the whole flood's.
    sources = max(1, math.ceil(concurrency / SOURCE_CONNECTIONS))
    per_source = math.ceil(concurrency / sources)
    limits = httpx.Limits(max_connections=per_source, max_keepalive_connections=per_source)
    clients = [
        httpx.AsyncClient(
            base_url=gateway,
            timeout=60,
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n}", limits=limits),
        )
        for n in range(sources)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)

        async def one(index: int) -> None:
            client = clients[index % sources]
            async with gate:
                for _attempt in range(RETRIES_AFTER_429 + 1):
                    try:
                        response = await client.post(
                            "/intake/v1/reports",
                            json=_report_body(index, anonymous),
                            headers=headers,
                        )
                    except httpx.HTTPError as error:
                        kind = type(error).__name__
                        failures[kind] = failures.get(kind, 0) + 1
                        return
                    if response.status_code != 429:
                        break
                    # As a client should: the gateway's per-address cap on requests whose
                    # bodies are still arriving (kit/http.py BodyGuard) says when to retry.
                    posted.retried += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                if response.status_code == 201:
                    accepted[response.json()["report_id"]] = time.time()
                else:
                    key = f"HTTP {response.status_code}"
                    failures[key] = failures.get(key, 0) + 1

        await asyncio.gather(*(one(i) for i in range(count)))
    if failures:
        say(f"    failures: {failures}")
    return posted


def _case_times(platform: Platform, report_ids: list[str]) -> dict[str, tuple[str, float]]:
    """report_id -> (case id hex, created_at) for the reports that have a case."""
    rows = _query(_db_path(platform, "cases"), "SELECT report_id, id, created_at FROM cases")
    wanted = {uuid.UUID(r).hex: r for r in report_ids}
    return {wanted[r]: (c, _when(t)) for r, c, t in rows if r in wanted}


def _wait_for_cases(
    platform: Platform, report_ids: list[str], timeout: float
) -> dict[str, tuple[str, float]]:
    deadline = time.monotonic() + timeout
    while True:
        found = _case_times(platform, report_ids)
        if len(found) >= len(report_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _wait_for_intake(platform: Platform, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (
                httpx.get(platform.url("intake") + f"/intake/v1/forms/{ORG}", timeout=5).status_code
                == 200
            ):
                return
        time.sleep(0.2)


def row_latency_and_flood(
    args: argparse.Namespace, platform: Platform, token: str, report: Report
) -> int:
    """The idle report -> case -> inbox latency, then the flood; returns reports sent."""
    gateway = platform.url("gateway")
    _wait_for_intake(platform)
    say(
        f"[flood] report -> case -> inbox notice at idle: {args.idle_reports} reports, "
        "one at a time"
    )
    posted: dict[str, float] = {}
    for _ in range(args.idle_reports):
        began = time.time()
        accepted = asyncio.run(_post_reports(gateway, token, 1, 1)).accepted
        for report_id in accepted:
            posted[report_id] = began
        time.sleep(0.3)
    cases = _wait_for_cases(platform, list(posted), timeout=30)
    deadline = time.monotonic() + 30
    notices: dict[str, float] = {}
    wanted = {case_hex: report_id for report_id, (case_hex, _) in cases.items()}
    while time.monotonic() < deadline and len(notices) < len(wanted):
        rows = _query(
            _db_path(platform, "notify"),
            "SELECT case_id, MIN(created_at) FROM inbox_messages WHERE case_id IS NOT NULL "
            "GROUP BY case_id",
        )
        notices = {wanted[c]: _when(t) for c, t in rows if c in wanted}
        time.sleep(0.2)
    to_case = sorted((cases[r][1] - posted[r]) * 1000 for r in cases)
    to_notice = sorted((notices[r] - posted[r]) * 1000 for r in notices)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    report.add(
        Row(
            "report -> case -> inbox notice, at idle (one report at a time)",
            f"notice p50 {pct(to_notice, 0.5):.0f} ms, p95 {pct(to_notice, 0.95):.0f} ms",
            "goal p95 < 250 ms",
            f"{len(to_notice)}/{len(posted)} noticed",
            f"case p50 {pct(to_case, 0.5):.0f} ms, p95 {pct(to_case, 0.95):.0f} ms",
        )
    )

    say(f"[flood] {args.flood} identified reports through the gateway at c32")
    began = time.time()
    flood = asyncio.run(_post_reports(gateway, token, args.flood, 32))
    accepted, failures, retried = flood.accepted, flood.failures, flood.retried
    refused = sum(failures.values())
    last_report = max(accepted.values()) if accepted else time.time()
    flood_seconds = last_report - began
    cases = _wait_for_cases(platform, list(accepted), timeout=args.flood_settle)
    last_case = max((t for _, t in cases.values()), default=float("nan"))
    after = last_case - last_report
    report.add(
        Row(
            f"{args.flood}-report flood: last case opened after the last report",
            f"+{after:.1f} s"
            if len(cases) == len(accepted)
            else f"{len(cases)}/{len(accepted)} cases after {args.flood_settle:.0f} s",
            "goal ≤ 5 s",
            f"flood took {flood_seconds:.1f} s",
            (f"{len(accepted) / flood_seconds:.0f} reports/s" if flood_seconds > 0 else "")
            + (f"; {refused} refused ({', '.join(failures)})" if refused else "")
            + (f"; {retried} retried after a 429" if retried else ""),
        )
    )
    return len(posted) + len(accepted)


# One authenticated read on each app: what its first request brings in (the JWKS fetch, the
# ORM's mappers configured at the first query) is part of an app at idle.
IDLE_READS = {
    "intake": "/intake/v1/escrow-settings",
    "cases": "/cases/v1/cases",
    "training": "/training/v1/courses",
    "notify": "/notify/v1/inbox",
}


def row_memory_idle(platform: Platform, password: str, report: Report) -> None:
    """Each app's RSS at idle, 2 s after: the platform's first start (empty databases:
    migrations in a child, the demo seeded) with the bytecode an install leaves (`make install`
    compiles it; `main` warms the bench's cache the same way) and a sign-in; every app
    restarted on those databases, as a replica restarts (nothing to migrate or seed); then one
    authenticated read on each app; then the merged OpenAPI document read through the gateway
    (each app's document built, kit/documents.py). The goal holds for the largest of them."""

    def sizes() -> dict[str, float]:
        time.sleep(2.0)
        return {name: rss_mb(child.process.pid) for name, child in platform.children.items()}

    def shown(found: dict[str, float]) -> str:
        return ", ".join(f"{n} {s:.1f}" for n, s in found.items()) + " MB"

    first = sizes()
    say("[memory] idle RSS after the first start: " + shown(first))
    for name in list(platform.children):
        platform.stop_app(name)
        platform.start_app(name)
    platform.wait_healthy()
    token = token_for(platform.url("gateway"), password)
    restarted = sizes()
    say("[memory] idle RSS after a restart: " + shown(restarted))
    gateway = platform.url("gateway")
    for path in IDLE_READS.values():
        response = httpx.get(gateway + path, headers={"authorization": f"Bearer {token}"})
        response.raise_for_status()
    read = sizes()
    say("[memory] ... and one read on each app: " + shown(read))
    httpx.get(gateway + "/openapi.json", timeout=120).raise_for_status()
    documented = sizes()
    say("[memory] ... and the merged OpenAPI document: " + shown(documented))
    largest = max({**first, **restarted, **read, **documented}.values())
    report.add(
        Row(
            "RSS per app, idle",
            f"after a restart: {shown(restarted)}; and one read each: {shown(read)}; and "
            f"the API document: {shown(documented)}",
            f"after the first start: {shown(first)}",
            f"goal < 100 MB each (largest {largest:.1f})",
        )
    )


def row_memory_after(
    args: argparse.Namespace, platform: Platform, token: str, sent: int, report: Report
) -> None:
    intake = platform.children["intake"].process.pid
    before = rss_mb(intake)
    anonymous = min(args.anonymous, max(0, args.memory_reports - sent))
    identified = max(0, args.memory_reports - sent - anonymous)
    say(
        f"[memory] {identified} identified and {anonymous} anonymous reports "
        "(receipt codes, scrypt)"
    )
    gateway = platform.url("gateway")
    refused: dict[str, int] = {}
    retried = 0
    if identified:
        batch = asyncio.run(_post_reports(gateway, token, identified, 32))
        refused.update(batch.failures)
        retried += batch.retried
    peak = rss_mb(intake)
    if anonymous:
        batch = asyncio.run(_post_reports(gateway, token, anonymous, 16, anonymous=True))
        for kind, n in batch.failures.items():
            refused[kind] = refused.get(kind, 0) + n
        retried += batch.retried
    after = rss_mb(intake)
    time.sleep(args.settle)
    settled = rss_mb(intake)
    notes = [f"{retried} retried after a 429"] if retried else []
    if refused:
        notes.append("refused: " + ", ".join(f"{k} ×{n}" for k, n in refused.items()))
    report.add(
        Row(
            f"intake RSS after {args.memory_reports:,} reports ({anonymous} anonymous)",
            f"{after:.0f} MB; {settled:.0f} MB {args.settle:.0f} s later",
            f"before {before:.0f} MB; {peak:.0f} MB before the anonymous ones",
            "goal: flat",
            "; ".join(notes),
        )
    )


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ROWS), help=f"comma-separated: {','.join(ROWS)}")
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="per target and comparison, over the rounds"
    )
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds per comparison (median kept)"
    )
    parser.add_argument("--password", default="upstander-demo")
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--flood-settle", type=float, default=120.0)
    parser.add_argument("--idle-reports", type=int, default=30)
    parser.add_argument("--memory-reports", type=int, default=3000)
    parser.add_argument("--anonymous", type=int, default=200, help="of the memory reports")
    parser.add_argument("--settle", type=float, default=10.0, help="idle wait before the last RSS")
    parser.add_argument(
        "--child-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in the platform's apps (e.g. MALLOC_ARENA_MAX=2); repeatable",
    )
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    args.child_env = dict(item.split("=", 1) for item in args.child_env if "=" in item)
    chosen = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = sorted(set(chosen) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)} (choose from {', '.join(ROWS)})")
    missing = missing_apps()
    if missing:
        print("cannot bench: no runnable package for " + ", ".join(missing))
        return 2
    args.nginx = find_nginx()
    args.wrk = None if args.no_wrk else shutil.which("wrk")
    say(
        f"nginx: {args.nginx or 'not found'}; load: "
        f"{'wrk -t1 -c' + str(args.connections) if args.wrk else 'Python generator'}; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
    )
    report = Report()
    began = time.monotonic()
    args.folder = Path(tempfile.mkdtemp(prefix="upstander-bench-"))
    try:
        if "startup" in chosen:
            row_startup(args, report)
        platform_rows = [r for r in chosen if r != "startup"]
        if platform_rows:
            ports = {name: free_port() for name in APPS}
            say(f"starting the platform (SQLite) on 127.0.0.1 ports {sorted(ports.values())}")
            environment = {**bytecode_env(args.folder / "pycache"), **args.child_env}
            if "memory" in chosen:
                # The bytecode `make install` leaves (the apps' and their packages'): started
                # once on databases thrown away, so the first start measured compiles nothing.
                say("[memory] the bytecode cache warmed: the platform started once, thrown away")
                with Platform(
                    var_dir=args.folder / "warm",
                    ports={name: free_port() for name in APPS},
                    sink=quiet_sink,
                    extra_env=environment,
                ) as warm:
                    token_for(warm.url("gateway"), args.password)
            with Platform(
                var_dir=args.folder / "var",
                ports=ports,
                sink=quiet_sink,
                extra_env=environment,
            ) as platform:
                token = token_for(platform.url("gateway"), args.password)
                if "memory" in chosen:
                    row_memory_idle(platform, args.password, report)
                if "gateway" in chosen:
                    row_gateway(args, platform, token, report)
                if "db" in chosen:
                    row_db(args, platform, token, report)
                if "edge" in chosen:
                    row_edge(args, platform, token, report)
                sent = 0
                if "flood" in chosen:
                    token = token_for(platform.url("gateway"), args.password)
                    sent = row_latency_and_flood(args, platform, token, report)
                if "memory" in chosen:
                    token = token_for(platform.url("gateway"), args.password)
                    row_memory_after(args, platform, token, sent, report)
    finally:
        if args.keep:
            say(f"kept {args.folder}")
        else:
            shutil.rmtree(args.folder, ignore_errors=True)
    say("")
    say(
        f"Upstander bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end, {time.monotonic() - began:.0f} s"
    )
    say(report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
