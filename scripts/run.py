"""`make run`: the whole platform on localhost — four services and the gateway, SQLite in var/.

Each child's output is prefixed with its name. Ctrl-C or SIGTERM stops them all (SIGTERM, then
SIGKILL after 5 s); if any child dies on its own, the rest are stopped and this exits non-zero.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from types import FrameType

from launcher import APPS, REPO_ROOT, Platform, PlatformError, missing_apps

CREDENTIAL_HINT = re.compile(r"demo|password|credential", re.IGNORECASE)


class StopRequested(Exception):
    pass


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def banner(platform: Platform) -> str:
    gateway = platform.url("gateway")
    password = os.environ.get("UPSTANDER_DEMO_PASSWORD", "upstander-demo")
    # The gateway prints the demo credentials when it first creates the demo organisation.
    from_gateway = [
        line
        for line in platform.recent_lines("gateway")
        if CREDENTIAL_HINT.search(line) and not line.lstrip().startswith("{")
    ]
    lines = [
        "",
        "=" * 72,
        "Upstander is running (dev mode, SQLite in var/).",
        f"  gateway   {gateway}",
        f"  docs      {gateway}/docs",
        f"  healthz   {gateway}/healthz",
        "  services  "
        + ", ".join(f"{name} {platform.url(name)}" for name in APPS if name != "gateway"),
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
        "Ctrl-C stops everything.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    missing = missing_apps()
    if missing:
        print("cannot start: no runnable package for " + ", ".join(missing), file=sys.stderr)
        return 2
    var_dir = REPO_ROOT / "var"
    platform = Platform(var_dir=var_dir)
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    exit_code = 0
    try:
        platform.start()
        platform.wait_healthy(timeout=90)
        print(banner(platform), flush=True)
        while True:
            dead = platform.dead()
            if dead:
                for child in dead:
                    print(
                        f"{child.name} exited with code {child.process.returncode}; "
                        "stopping the others",
                        file=sys.stderr,
                    )
                exit_code = 1
                break
            time.sleep(0.5)
    except StopRequested as stop:
        print(f"\n{stop} received; stopping", flush=True)
    except PlatformError as error:
        print(f"failed to start: {error}", file=sys.stderr)
        exit_code = 1
    finally:
        # A second Ctrl-C while stopping must not leave orphans behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        codes = platform.stop(grace=5.0)
        if codes:
            print("stopped: " + ", ".join(f"{n}={c}" for n, c in codes.items()), flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
