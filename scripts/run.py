"""`make run`: the whole platform on localhost — four services and the gateway.

Every `UPSTANDER_*` variable of the environment (or `.env`) reaches the services as set: the
launcher only fills in what is unset (SQLite files in `var/`, ports 8000-8004, 127.0.0.1), so
`UPSTANDER_<APP>_DATABASE_URL` runs an app on PostgreSQL and `UPSTANDER_EVENT_TRANSPORT=nats`
on NATS (README, "Configuration").

Each child's output is prefixed with its name. A child that dies is restarted (after 0.5 s,
doubling to 30 s while it keeps dying; at most 5 restarts of one app a minute, after which
everything stops and this exits non-zero); the others keep running. Ctrl-C or SIGTERM stops
them all (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from launcher import (
    APPS,
    REPO_ROOT,
    Platform,
    PlatformError,
    Supervisor,
    missing_apps,
    print_sink,
    shown_url,
)

CREDENTIAL_HINT = re.compile(r"demo|password|credential", re.IGNORECASE)


class StopRequested(Exception):
    pass


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def say(message: str) -> None:
    print_sink("launcher", message)


def _databases(platform: Platform) -> list[str]:
    return [f"  {name:<9} {shown_url(platform.database_urls[name])}" for name in platform.apps]


def demo_lines(platform: Platform) -> list[str]:
    """The demo credentials the gateway printed: it does when it first creates the demo
    organisation."""
    return [
        line
        for line in platform.recent_lines("gateway")
        if CREDENTIAL_HINT.search(line) and not line.lstrip().startswith("{")
    ]


def banner(platform: Platform) -> str:
    gateway = platform.url("gateway")
    password = os.environ.get("UPSTANDER_DEMO_PASSWORD", "upstander-demo")
    mode = os.environ.get("UPSTANDER_MODE", "dev")
    transport = os.environ.get("UPSTANDER_EVENT_TRANSPORT", "http")
    from_gateway = demo_lines(platform)
    lines = [
        "",
        "=" * 72,
        f"Upstander is running ({mode} mode, events over {transport}).",
        f"  gateway   {gateway}",
        f"  docs      {gateway}/docs",
        f"  healthz   {gateway}/healthz",
        "  services  "
        + ", ".join(f"{name} {platform.url(name)}" for name in APPS if name != "gateway"),
        "Databases:",
        *_databases(platform),
        "",
        "Demo credentials (every role is <role>@demo.example):",
        *(f"  {line.strip()}" for line in from_gateway[-16:]),
        f"  admin@demo.example / {password}",
        "",
        "Try:",
        f"  TOKEN=$(curl -s {gateway}/auth/token -d grant_type=password \\",
        f"      -d username=admin@demo.example -d password={password} \\",
        "      | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        f'  curl -s {gateway}/identity/v1/people -H "Authorization: Bearer $TOKEN"',
        f'  curl -s {gateway}/training/v1/courses -H "Authorization: Bearer $TOKEN"',
        f"  curl -s {gateway}/intake/v1/forms/demo",
        "",
        "A service that dies is restarted. Ctrl-C stops everything.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=REPO_ROOT / "var",
        help="where the default SQLite files and the mail folder go (default: var/)",
    )
    args = parser.parse_args(argv)
    missing = missing_apps()
    if missing:
        print("cannot start: no runnable package for " + ", ".join(missing), file=sys.stderr)
        return 2
    platform = Platform(var_dir=args.var_dir, honour_environment=True)
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    exit_code = 0
    supervisor: Supervisor | None = None
    try:
        platform.start()
        for name, child in platform.children.items():
            say(f"{name} started (pid {child.process.pid}) on {child.url}")
        platform.wait_healthy(timeout=90)
        # On the first start, wait until a report for the demo organisation is taken.
        if demo_lines(platform) and not platform.wait_for_demo_form():
            say("intake does not know the demo organisation yet (its form answers 404)")
        print(banner(platform), flush=True)
        supervisor = Supervisor(platform, log=say)
        while True:
            supervisor.poll()
            time.sleep(0.5)
    except StopRequested as stop:
        print(f"\n{stop} received; stopping", flush=True)
    except PlatformError as error:
        print(f"failed: {error}", file=sys.stderr, flush=True)
        exit_code = 1
    finally:
        # A second Ctrl-C while stopping must not leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if supervisor is not None:
            supervisor.close()
        codes = platform.stop(grace=5.0)
        if codes:
            print("stopped: " + ", ".join(f"{n}={c}" for n, c in codes.items()), flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
