"""deploy/nginx/: the shipped configuration is valid for nginx as a whole (TLS server blocks
included), and, in front of the five real processes, sends the API paths straight to the
services while what only the gateway can do stays on the gateway.

Needs nginx on PATH (`apt-get install nginx-light`); skipped without it. The static checks
at the top run everywhere."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import self_signed_certificate
from launcher import APPS, Platform, free_port, missing_apps, quiet_sink
from throwaway_nginx import (
    DEFAULT_PORTS,
    INSTALLED_AT,
    find_nginx,
    install_deploy_nginx,
    nginx_conf,
    run_nginx,
    server_conf,
)
from throwaway_nginx import DEPLOY_NGINX as NGINX_DIR

DIRECT = ("intake", "cases", "training", "notify")


def _locations(text: str) -> dict[str, str]:
    """`location <match> { body }` → body (the shipped files nest no blocks in locations)."""
    return {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r"location\s+([^{]+)\{([^}]*)\}", text)
    }


def test_every_direct_route_gets_the_edge_headers_and_anonymous_intake_no_traces() -> None:
    routes = _locations((NGINX_DIR / "routes.conf").read_text())
    for service in DIRECT:
        body = routes[f"/{service}/v1/"]
        assert f"{INSTALLED_AT}direct.conf" in body, service
        assert f"{INSTALLED_AT}proxy.conf" in body, service
        assert f"$upstander_{service}_route" in body, service
    intake = routes["/intake/v1/"]
    assert "access_log off" in intake
    assert 'proxy_set_header User-Agent ""' in intake
    assert 'proxy_set_header Referer ""' in intake
    for limited in ("/intake/v1/escrow", "/intake/v1/records", "/auth/"):
        assert "limit_req zone=upstander_auth" in routes[limited], limited
        assert "upstander_gateway" in routes[limited], limited
    assert "limit_req zone=upstander_receipt" in routes["= /auth/receipt"]
    proxy = (NGINX_DIR / "proxy.conf").read_text()
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        assert f'proxy_set_header {header} "";' in proxy


# -- with nginx -----------------------------------------------------------------------------

NGINX = find_nginx()
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


@needs_nginx
def test_the_shipped_configuration_is_valid_nginx(tmp_path: Path) -> None:
    copy = install_deploy_nginx(tmp_path, DEFAULT_PORTS)
    cert, key = self_signed_certificate(
        tmp_path, "upstander.example.org", cert_name="fullchain.pem", key_name="privkey.pem"
    )
    main = copy / "upstander.conf"
    text = main.read_text()
    text = text.replace("/etc/ssl/upstander/fullchain.pem", str(cert))
    text = text.replace("/etc/ssl/upstander/privkey.pem", str(key))
    text = text.replace("/var/log/nginx/upstander.log", str(tmp_path / "access.log"))
    main.write_text(text)
    conf = nginx_conf(tmp_path, f"    include {main};", worker_connections=64)
    assert NGINX is not None
    done = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Platform]]:
    if NGINX is None:
        pytest.skip("nginx is not installed")
    missing = missing_apps()
    if missing:
        pytest.skip("no runnable app yet for: " + ", ".join(missing))
    folder = tmp_path_factory.mktemp("edge")
    platform = Platform(
        var_dir=folder / "var", ports={name: free_port() for name in APPS}, sink=quiet_sink
    )
    port = free_port()
    copy = install_deploy_nginx(folder, platform.ports)
    conf = server_conf(
        folder,
        port,
        f"    include {copy}/upstreams.conf;\n    include {copy}/http.conf;",
        f"        include {copy}/routes.conf;",
        worker_connections=64,
    )
    with platform, run_nginx(NGINX, conf, port):
        # The reporter page `/r/demo` shows intake's form, which waits for `org.created`.
        assert platform.wait_for_demo_form(timeout=30.0), "intake never learnt of the demo org"
        yield f"http://127.0.0.1:{port}", platform


def _served_by(platform: Platform, request_id: str, expected: set[str]) -> set[str]:
    """The apps whose log has a line with `request_id` (each app logs every request): read
    once every app in `expected` has logged it (each writes its line on its own time), and
    again a moment later, so that an app that should not have served it is seen too."""

    def found() -> set[str]:
        return {
            name for name in APPS if any(request_id in line for line in platform.recent_lines(name))
        }

    deadline = time.monotonic() + 10
    while not found() >= expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return found()


def _token(url: str) -> str:
    response = httpx.post(
        url + "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin@demo.example",
            "password": "upstander-demo",
            "org": "demo",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.mark.processes
def test_direct_routes_verify_tokens_in_the_service_and_carry_the_edge_headers(
    edge: tuple[str, Platform],
) -> None:
    url, platform = edge
    token = _token(url)  # /auth goes to the gateway
    request_id = f"edge-direct-{uuid.uuid4().hex}"
    ok = httpx.get(
        url + "/training/v1/courses",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    assert ok.status_code == 200, ok.text
    assert _served_by(platform, request_id, {"training"}) == {"training"}
    assert ok.headers["x-frame-options"] == "DENY"
    assert ok.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert ok.headers["cache-control"] == "no-store"
    header, _, signature = token.rpartition(".")
    forged = header + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for service, path in (
        ("training", "/training/v1/courses"),
        ("cases", "/cases/v1/cases"),
        ("notify", "/notify/v1/inbox"),
    ):
        for bad in ("", "Bearer not-a-token", f"Bearer {forged}"):
            headers = {"Authorization": bad} if bad else {}
            refused = httpx.get(url + path, headers=headers)
            assert refused.status_code == 401, (service, bad[:12], refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.headers["x-frame-options"] == "DENY"


@pytest.mark.processes
def test_what_only_the_gateway_does_stays_on_the_gateway(edge: tuple[str, Platform]) -> None:
    url, platform = edge
    # LRS Basic: the gateway's own challenge, not training's bearer one.
    request_id = f"edge-basic-{uuid.uuid4().hex}"
    basic = httpx.get(
        url + "/training/v1/xapi/about",
        auth=("nobody", "wrong"),
        headers={"X-Request-ID": request_id},
    )
    assert basic.status_code == 401
    assert basic.headers["www-authenticate"].lower().startswith("basic")
    assert "gateway" in _served_by(platform, request_id, {"gateway"})
    # CORS: a preflight from an origin nobody allowed is the gateway's 403 problem.
    preflight = httpx.options(
        url + "/training/v1/courses",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 403
    assert preflight.headers["content-type"].startswith("application/problem+json")
    # ... and a browser's actual request (with Origin) passes the gateway on its way.
    request_id = f"edge-origin-{uuid.uuid4().hex}"
    actual = httpx.get(
        url + "/training/v1/courses",
        headers={
            "Origin": "https://elsewhere.example",
            "Authorization": f"Bearer {_token(url)}",
            "X-Request-ID": request_id,
        },
    )
    assert actual.status_code == 200, actual.text
    assert _served_by(platform, request_id, {"gateway", "training"}) == {"gateway", "training"}
    for path in ("/healthz", "/.well-known/jwks.json", "/r/demo", "/docs"):
        assert httpx.get(url + path).status_code == 200, path
