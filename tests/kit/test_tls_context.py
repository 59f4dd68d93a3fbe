"""The HTTP clients' shared TLS context (`kit.http.tls_context`): made once, its trusted
certificates loaded only when its first connection is wrapped, and then verifying exactly as
httpx's own default: a server whose certificate the store does not trust is refused; one it
trusts (here through `SSL_CERT_FILE`, as httpx honours it) is reached."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from helpers import self_signed_certificate

from upstander.kit import http as kit_http


async def _hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture
def fresh_context() -> Iterator[None]:
    kit_http.tls_context.cache_clear()
    yield
    kit_http.tls_context.cache_clear()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    cert, key = self_signed_certificate(tmp_path)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _hello, ssl_certfile=str(cert), ssl_keyfile=str(key), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"https://127.0.0.1:{port}/", cert
    server.should_exit = True
    await task


def _trusted(context: ssl.SSLContext) -> int:
    return int(context.cert_store_stats()["x509_ca"])


async def test_certificates_load_on_first_use_and_an_unknown_server_is_refused(
    tls_server: tuple[str, Path], fresh_context: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    url, _ = tls_server
    context = kit_http.tls_context()
    assert kit_http.tls_context() is context  # one per process
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert _trusted(context) == 0  # nothing loaded yet
    async with httpx.AsyncClient(verify=context) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url)
    assert _trusted(context) > 100  # certifi's bundle, loaded by the first connection


async def test_a_server_the_store_trusts_is_reached(
    tls_server: tuple[str, Path], fresh_context: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with httpx.AsyncClient(verify=kit_http.tls_context()) as client:
        response = await client.get(url)
    assert response.text == "hello"
    assert _trusted(kit_http.tls_context()) == 1
