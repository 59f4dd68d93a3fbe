"""Webhooks cannot be turned into server-side request forgery: internal targets are refused at
registration, on every URL change and at delivery, and a refused delivery says nothing more."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from upstander.kit.errors import BadRequest
from upstander.notify.webhooks.targets import (
    TARGET_REFUSED,
    TargetPolicy,
    check_registration,
    is_refusal,
    own_origins,
    webhook_client,
)

PATH = "/notify/v1/webhooks"

# 30 internal targets, in the spellings an attacker would try.
INTERNAL_TARGETS = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://127.255.255.254:8080/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://instance-data/",
    "http://10.0.0.1/",
    "http://10.255.255.255:9200/",
    "http://172.16.0.1/",
    "http://172.31.255.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://[2002:c0a8:0101::1]/",  # 6to4 of 192.168.1.1
    "http://db.cluster.local:5432/",
]


@pytest.mark.parametrize("url", INTERNAL_TARGETS)
async def test_internal_targets_are_refused_at_registration(url: str) -> None:
    with pytest.raises(BadRequest):
        await check_registration(url, TargetPolicy(allow_loopback=False))


@pytest.mark.parametrize(
    "url", ["http://93.184.216.34/hook", "https://[2606:4700:4700::1111]/x", "https://hr.test/"]
)
async def test_public_and_not_yet_resolvable_targets_are_accepted(url: str) -> None:
    assert await check_registration(url, TargetPolicy(allow_loopback=False)) == url


async def test_loopback_is_allowed_only_where_the_deployment_allows_it() -> None:
    dev = TargetPolicy(allow_loopback=True, own_origins=own_origins(["http://127.0.0.1:8003"]))
    assert await check_registration("http://127.0.0.1:9999/hook", dev)
    assert await check_registration("http://localhost:9999/hook", dev)
    # ...but never the platform's own services (their internal event routes)
    with pytest.raises(BadRequest):
        await check_registration("http://127.0.0.1:8003/notify/internal/events", dev)
    # ...and never private or metadata addresses
    with pytest.raises(BadRequest):
        await check_registration("http://169.254.169.254/", dev)


@pytest.mark.parametrize("url", ["http://user:pw@hr.test/", "gopher://hr.test/", "http:///x"])
async def test_malformed_or_credentialed_urls_are_refused(url: str) -> None:
    with pytest.raises(BadRequest):
        await check_registration(url, TargetPolicy())


async def test_the_api_refuses_internal_targets_on_create_and_on_patch(client, caller) -> None:
    admin = caller("admin")
    for url in ("http://169.254.169.254/latest", "http://10.1.2.3/", "http://[fd00::1]/"):
        refused = await client.post(
            PATH, json={"url": url, "event_types": ["upstander.case.*"]}, headers=admin.headers
        )
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    created = await client.post(
        PATH,
        json={"url": "https://hr.test/hook", "event_types": ["upstander.case.*"]},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    moved = await client.patch(
        f"{PATH}/{created.json()['id']}",
        json={"url": "http://192.168.0.10/hook"},
        headers=admin.headers,
    )
    assert moved.status_code == 400, moved.text
    unchanged = await client.get(f"{PATH}/{created.json()['id']}", headers=admin.headers)
    assert unchanged.json()["url"] == "https://hr.test/hook"


# ----------------------------------------------------------------------------- delivery


class _Hook(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        _Hook.hits.append(self.path)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def local_receiver() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def test_the_guarded_client_connects_only_to_allowed_addresses(local_receiver: int) -> None:
    url = f"http://127.0.0.1:{local_receiver}/hook"
    async with webhook_client(TargetPolicy(allow_loopback=True), timeout=5) as allowed:
        assert (await allowed.post(url, content=b"{}")).status_code == 200
    async with webhook_client(TargetPolicy(allow_loopback=False), timeout=5) as guarded:
        for target in (url, f"http://localhost:{local_receiver}/hook"):
            with pytest.raises(httpx.ConnectError) as refused:
                await guarded.post(target, content=b"{}")
            assert is_refusal(refused.value)


async def test_a_refused_delivery_is_logged_without_detail(
    app, client, caller, events, local_receiver: int
) -> None:
    """Registered while loopback was allowed (dev), delivered where it is not (as if DNS
    changed its answer): the delivery never connects and its log says only that."""
    admin = caller("admin")
    created = await client.post(
        PATH,
        json={
            "url": f"http://127.0.0.1:{local_receiver}/ssrf",
            "event_types": ["upstander.case.*"],
        },
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    dispatcher = app.state.worker.webhooks
    original = dispatcher.http
    dispatcher.http = webhook_client(TargetPolicy(allow_loopback=False), timeout=5)
    _Hook.hits.clear()
    try:
        await events.publish(
            "upstander.case.opened",
            {
                "case_id": str(uuid.uuid4()),
                "number": "DEMO-2026-0009",
                "routed_to": "case_managers",
            },
            org_id=admin.org_id,
        )
        assert await app.state.worker.run_once() >= 1
    finally:
        await dispatcher.http.aclose()
        dispatcher.http = original
    assert _Hook.hits == []
    log = await client.get(f"{PATH}/{created.json()['id']}/deliveries", headers=admin.headers)
    (delivery,) = log.json()["items"]
    assert delivery["status"] == "failed" and delivery["error"] == TARGET_REFUSED
    assert delivery["response_code"] is None
