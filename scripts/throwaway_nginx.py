"""A throw-away nginx for `make bench` and the edge test: found on the machine, configured in
a folder of its own (never the system's configuration), with deploy/nginx/ installed into that
folder and pointed at the apps' ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from launcher import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_NGINX = REPO_ROOT / "deploy" / "nginx"
# Where deploy/nginx/ expects to be installed (its includes name files there).
INSTALLED_AT = "/etc/nginx/upstander/"
DEFAULT_PORTS = {"gateway": 8000, "intake": 8001, "cases": 8002, "training": 8003, "notify": 8004}


def find_nginx() -> str | None:
    """nginx on PATH or where Debian puts it (`apt-get install nginx-light`), else None."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def install_deploy_nginx(folder: Path, ports: dict[str, int]) -> Path:
    """A copy of deploy/nginx/ in `folder/upstander`, its include paths and the apps'
    addresses (`ports`, by app) rewritten; returns the copy's folder."""
    copy = folder / "upstander"
    copy.mkdir(parents=True, exist_ok=True)
    for source in DEPLOY_NGINX.glob("*.conf"):
        text = source.read_text().replace(INSTALLED_AT, f"{copy}/")
        if source.name == "upstreams.conf":
            for name, default in DEFAULT_PORTS.items():
                text = text.replace(f"127.0.0.1:{default};", f"127.0.0.1:{ports[name]};")
        (copy / source.name).write_text(text)
    return copy


def nginx_conf(folder: Path, http: str, *, worker_connections: int = 1024) -> Path:
    """A whole nginx.conf in `folder` for a throw-away nginx (`nginx -p folder -c conf`): one
    worker, no daemon, its pid, error log and temporary files in `folder`, no access log,
    and `http` (upstreams, servers, includes) inside the http block."""
    temp = folder / "nginx-temp"
    temp.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{http}
}}
"""
    )
    return conf


def server_conf(
    folder: Path, port: int, http: str, server: str, *, worker_connections: int = 1024
) -> Path:
    """`nginx_conf` with `http` and one server listening on 127.0.0.1:`port` with `server`
    (its locations, includes) inside."""
    return nginx_conf(
        folder,
        f"{http}\n    server {{\n        listen 127.0.0.1:{port};\n{server}\n    }}",
        worker_connections=worker_connections,
    )


@contextlib.contextmanager
def run_nginx(nginx: str, conf: Path, port: int, timeout: float = 20.0) -> Iterator[None]:
    """nginx on `conf` (its folder as the prefix) until the block ends, once it listens on
    `port`; stopped with SIGTERM (SIGKILL after 5 s)."""
    child = subprocess.Popen(
        [nginx, "-p", str(conf.parent), "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if child.poll() is not None:
                raise RuntimeError(f"nginx did not start: {child.communicate()[1][-500:]!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx does not listen on 127.0.0.1:{port}")
            time.sleep(0.02)
        yield
    finally:
        stop_process(child)
