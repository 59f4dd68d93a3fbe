"""`make conformance`: run the ADL xAPI LRS conformance suite (1.0.3) against a live platform.

It starts the gateway and the four services on free ports with throw-away databases (SQLite in
a temporary folder; `--backend postgresql` puts the training service on a fresh PostgreSQL
database, dropped afterwards), signs in as the demo admin, registers an API client with the
xAPI scopes, copies the suite (`../shared/xapi-conformance`, or `UPSTANDER_XAPI_SUITE`) to a
temporary folder, installs its npm dependencies (cached outside the repository, in
`~/.cache/upstander/xapi-conformance/<hash of package.json>`, so reruns skip npm), runs it with
the client's id and secret as HTTP Basic key and secret, reads its JSON log and prints the
counts and every failing test. Exits non-zero when fewer than `--threshold` (95%) pass.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launcher import APPS, REPO_ROOT, Platform, free_port

SUITE_NAME = Path("shared") / "xapi-conformance"


def default_suite() -> Path:
    """The suite's copy beside the checkout (`../shared/xapi-conformance`), else in a folder
    above it, else the workplace's `/work/shared` (a CI clone may live anywhere)."""
    candidates = [folder / SUITE_NAME for folder in REPO_ROOT.parents]
    candidates.append(Path("/work") / SUITE_NAME)
    for candidate in candidates:
        if (candidate / "bin" / "console_runner.js").is_file():
            return candidate
    return REPO_ROOT.parent / SUITE_NAME


DEFAULT_SUITE = default_suite()
CACHE_ROOT = Path(
    os.environ.get(
        "UPSTANDER_XAPI_CACHE", Path.home() / ".cache" / "upstander" / "xapi-conformance"
    )
)
PG_ADMIN = os.environ.get("UPSTANDER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def say(message: str) -> None:
    print(f"[conformance] {message}", flush=True)


def prepare_suite(source: Path, work: Path) -> Path:
    """Copy the suite into `work/suite` and give it its node_modules (from the cache, or npm)."""
    suite = work / "suite"
    shutil.copytree(source, suite, ignore=shutil.ignore_patterns("node_modules", "logs", ".git"))
    digest = hashlib.sha256((source / "package.json").read_bytes()).hexdigest()[:16]
    cached = CACHE_ROOT / digest
    if (cached / ".complete").is_file():
        say(f"node_modules from the cache ({cached})")
    else:
        say("npm install (first run; cached afterwards)")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=suite,
            check=True,
        )
        staging = CACHE_ROOT / f"{digest}.{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        # node_modules links to ../local (the suite's vendored packages): keep both side by side.
        shutil.copytree(suite / "node_modules", staging / "node_modules", symlinks=True)
        shutil.copytree(suite / "local", staging / "local", symlinks=True)
        (staging / ".complete").touch()
        shutil.rmtree(cached, ignore_errors=True)
        staging.rename(cached)
        return suite
    shutil.copytree(cached / "node_modules", suite / "node_modules", symlinks=True)
    return suite


async def _pg(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def pg_database(name: str) -> str:
    from sqlalchemy.engine import make_url

    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def client_credentials(gateway: str) -> tuple[str, str]:
    password = os.environ.get("UPSTANDER_DEMO_PASSWORD", "upstander-demo")
    with httpx.Client(base_url=gateway, timeout=30) as http:
        answer = http.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "admin@demo.example",
                "password": password,
            },
        )
        answer.raise_for_status()
        token = answer.json()["access_token"]
        # The suite's command line (commander 2) takes a value that starts with "-" for an
        # option of its own ("unknown option"); a secret is random URL-safe base64, so one in
        # 64 does. Such a client is left unused and another made.
        for _ in range(20):
            created = http.post(
                "/identity/v1/clients",
                json={"name": "xAPI conformance suite", "scopes": ["xapi:read", "xapi:write"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            created.raise_for_status()
            body = created.json()
            key, secret = str(body["client_id"]), str(body["client_secret"])
            if not key.startswith("-") and not secret.startswith("-"):
                return key, secret
        raise RuntimeError("no client credentials the suite's command line can take")


def failures(node: dict[str, Any], trail: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(test path, error) of every failed leaf test in the suite's log tree."""
    tests = node.get("tests") or []
    here = (*trail, node.get("title") or node.get("name") or "")
    if not tests:
        if node.get("status") == "failed":
            error = node.get("error")
            message = error.get("message", "") if isinstance(error, dict) else str(error or "")
            return [(" › ".join(t for t in here if t), message.strip())]
        return []
    found: list[tuple[str, str]] = []
    for test in tests:
        if test:
            found.extend(failures(test, here))
    return found


def run_suite(
    suite: Path, endpoint: str, key: str, secret: str, grep: str | None
) -> dict[str, Any]:
    command = ["node", "bin/console_runner.js", "-x", "1.0.3", "-e", endpoint, "-a"]
    command += ["-u", key, "-p", secret]
    if grep:
        command += ["-g", grep]
    say("running the suite: " + " ".join(command[:7]) + " -u <key> -p <secret>")
    started = time.monotonic()
    with open(suite / "console.txt", "wb") as out:
        subprocess.run(command, cwd=suite, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    say(f"suite finished in {time.monotonic() - started:.0f} s")
    logs = sorted((suite / "logs").glob("*.log")) + sorted((suite / "logs").glob("*.json"))
    if not logs:
        tail = (suite / "console.txt").read_text(errors="replace")[-3000:]
        raise SystemExit(f"the suite wrote no log; its output ended with:\n{tail}")
    return json.loads(logs[-1].read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--threshold", type=float, default=95.0, help="percent that must pass")
    parser.add_argument(
        "--suite", type=Path, default=Path(os.environ.get("UPSTANDER_XAPI_SUITE", DEFAULT_SUITE))
    )
    parser.add_argument("--grep", help="only the suite's tests matching this pattern")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--failures-json", type=Path, help="write the failures here as JSON")
    args = parser.parse_args(argv)
    if shutil.which("node") is None or shutil.which("npm") is None:
        say("node and npm are needed for the conformance suite")
        return 2
    if not (args.suite / "package.json").is_file():
        say(f"no conformance suite at {args.suite}")
        return 2

    work = Path(tempfile.mkdtemp(prefix="upstander-xapi-"))
    database = None
    platform: Platform | None = None
    try:
        suite = prepare_suite(args.suite, work)
        urls: dict[str, str] = {}
        if args.backend == "postgresql":
            database = f"upstander_xapi_{secrets.token_hex(4)}"
            urls["training"] = pg_database(database)
        log_file = open(work / "platform.log", "w")

        def sink(name: str, line: str) -> None:
            log_file.write(f"{name:>8} | {line}\n")
            log_file.flush()

        platform = Platform(
            var_dir=work / "var",
            ports={name: free_port() for name in APPS},
            database_urls=urls,
            sink=sink,
            extra_env={"UPSTANDER_MODE": "dev", "UPSTANDER_LOG_LEVEL": "WARNING"},
        )
        platform.start()
        platform.wait_healthy(timeout=120)
        gateway = platform.url("gateway")
        say(f"platform up ({args.backend}) at {gateway}")
        key, secret = client_credentials(gateway)
        record = run_suite(suite, f"{gateway}/training/v1/xapi", key, secret, args.grep)
    finally:
        if platform is not None:
            platform.stop()
        if database is not None:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"kept {work}")

    summary = record.get("summary", {})
    failed = failures(record.get("log") or {})
    for title, message in failed:
        print(f"FAIL {title}\n     {message[:400]}")
    if args.failures_json:
        args.failures_json.write_text(json.dumps(failed, indent=1))
    total = int(summary.get("total") or 0)
    passed = int(summary.get("passed") or 0)
    percent = 100.0 * passed / total if total else 0.0
    print(
        f"\nxAPI conformance (1.0.3, {args.backend}): {passed} passed, "
        f"{int(summary.get('failed') or 0)} failed, {total} total — {percent:.1f}% "
        f"(threshold {args.threshold:.0f}%)"
    )
    return 0 if total and percent >= args.threshold else 1


if __name__ == "__main__":
    sys.exit(main())
