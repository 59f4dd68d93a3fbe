"""`make bench`: what the gateway costs. Starts the platform (the launcher `make run` uses) on
free ports with fresh SQLite files, then, from a second process, sends the same request N times
with concurrency C through the gateway and directly to the service, and prints requests per
second, p50 and p99 for both and their ratio. Figures only; nothing is asserted.

    python bench/gateway_overhead.py [-n 2000] [-c 16] [--path /training/v1/courses]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))

# -- the load generator (runs in its own process) -----------------------------------------------


async def _load(url: str, token: str, requests: int, concurrency: int, max_seconds: float) -> dict:
    import httpx

    if urlsplit(url).hostname != "127.0.0.1":
        raise SystemExit("the load generator only targets 127.0.0.1")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    first_error = ""
    issued = 0
    deadline = time.monotonic() + max_seconds

    async with httpx.AsyncClient(limits=limits, timeout=10.0, headers=headers) as client:
        for _ in range(min(50, requests)):  # warm up connections and caches; not counted
            await client.get(url)

        async def worker() -> None:
            nonlocal errors, issued, first_error
            while issued < requests and time.monotonic() < deadline:
                issued += 1
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                    await response.aread()
                    ok = response.status_code < 400
                    if not ok and not first_error:
                        first_error = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    ok = False
                    first_error = first_error or f"{type(error).__name__}: {error}"
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began

    latencies.sort()

    def percentile(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "seconds": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


def load_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gateway_overhead.py load")
    parser.add_argument("url")
    parser.add_argument("--token", default="")
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    result = asyncio.run(
        _load(args.url, args.token, args.requests, args.concurrency, args.max_seconds)
    )
    print(json.dumps(result))
    return 0


# -- the orchestrator ---------------------------------------------------------------------------


def _run_load(url: str, token: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "load",
        url,
        "--token",
        token,
        "-n",
        str(args.requests),
        "-c",
        str(args.concurrency),
        "--max-seconds",
        str(args.max_seconds),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.max_seconds + 60, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"load generator failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _token(gateway: str, password: str) -> str:
    import httpx

    response = httpx.post(
        gateway + "/auth/token",
        data={"grant_type": "password", "username": "admin@demo.example", "password": password},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def main(argv: list[str]) -> int:
    from launcher import APPS, Platform, free_port, missing_apps, quiet_sink

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap per run")
    parser.add_argument("--path", default="/training/v1/courses")
    parser.add_argument("--service", default="training", help="which service serves --path")
    parser.add_argument("--password", default="upstander-demo")
    args = parser.parse_args(argv)

    missing = missing_apps()
    if missing:
        print("cannot bench: no runnable package for " + ", ".join(missing))
        return 2
    with tempfile.TemporaryDirectory(prefix="upstander-bench-") as folder:
        ports = {name: free_port() for name in APPS}
        print(f"starting the platform on 127.0.0.1 ports {sorted(ports.values())} ...")
        with Platform(var_dir=Path(folder), ports=ports, sink=quiet_sink) as platform:
            token = _token(platform.url("gateway"), args.password)
            targets = {
                "through gateway": platform.url("gateway") + args.path,
                f"direct to {args.service}": platform.url(args.service) + args.path,
            }
            results = {}
            for label, url in targets.items():
                print(f"{label}: GET {url}  n={args.requests} c={args.concurrency} ...")
                results[label] = _run_load(url, token, args)

    print()
    print(f"{'':<22}{'requests':>9}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for label, r in results.items():
        print(
            f"{label:<22}{r['requests']:>9}{r['errors']:>8}{r['rps']:>10.1f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
        )
    for label, r in results.items():
        if r["errors"]:
            print(f"  {label}: first error: {r['first_error']}")
    through, direct = results.values()
    if through["rps"] and direct["p50_ms"]:
        print(
            f"\ngateway/direct: throughput x{through['rps'] / direct['rps']:.2f}, "
            f"p50 x{through['p50_ms'] / direct['p50_ms']:.2f}, "
            f"p99 x{through['p99_ms'] / direct['p99_ms']:.2f}; "
            f"gateway adds ~{through['p50_ms'] - direct['p50_ms']:.2f} ms at p50"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        sys.exit(load_main(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
