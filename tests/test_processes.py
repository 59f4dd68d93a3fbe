"""The real thing: five processes started as `make run` starts them, on free ports, talking
over real sockets — gateway → service → database — then stopped cleanly."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import helpers
import httpx
import pytest
from launcher import APPS, SERVICES, Platform, free_port, missing_apps, quiet_sink, sqlite_url

pytestmark = pytest.mark.processes

HEALTHY = {"ok", "up", "healthy", "pass", "available"}


@pytest.fixture(scope="module")
def skip_unless_runnable() -> None:
    missing = missing_apps()
    if missing:
        pytest.skip("no runnable `python -m upstander.<app>` yet for: " + ", ".join(missing))


@pytest.fixture(scope="module")
async def database_urls(
    skip_unless_runnable: None, test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, str]]:
    if test_backend == "sqlite":
        folder = tmp_path_factory.mktemp("platform")
        yield {name: sqlite_url(folder / f"{name}.db") for name in APPS}
        return
    # Empty databases unique to this run (`upstander_t_<run>_processes_<app>`): the processes
    # migrate them on start, as `make run` does.
    urls = {name: await helpers.fresh_pg_database(f"processes_{name}") for name in APPS}
    yield urls
    for url in urls.values():
        await helpers.drop_pg_database(url)


@pytest.fixture(scope="module")
def platform(
    database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    running = Platform(
        var_dir=tmp_path_factory.mktemp("var"),
        ports={name: free_port() for name in APPS},
        database_urls=database_urls,
        sink=quiet_sink,
    )
    with running:
        yield running


def _service_states(body: Any) -> dict[str, str]:
    """Read each service's state from the gateway's /healthz, whichever of the usual shapes
    it has: {"services": {name: "ok" | {"status": "ok"}}}, a list of {name, status}, or
    top-level keys."""
    services = body.get("services", body) if isinstance(body, dict) else body
    states: dict[str, str] = {}
    if isinstance(services, dict):
        items = list(services.items())
    else:
        items = [(item.get("name") or item.get("service"), item) for item in services or []]
    for name, value in items:
        if isinstance(value, dict):
            value = value.get("status") or value.get("state")
        if isinstance(name, str) and isinstance(value, str):
            states[name] = value.lower()
    return states


async def _token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin@demo.example",
            "password": "upstander-demo",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_gateway_healthz_reports_every_service_up(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10) as client:
        response = await client.get("/healthz")

    assert response.status_code == 200, response.text
    states = _service_states(response.json())
    not_up = {name: states.get(name) for name in SERVICES if states.get(name) not in HEALTHY}
    assert not_up == {}, f"not every service is up: {response.json()}"


async def test_people_are_listed_through_the_gateway(platform: Platform) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10) as client:
        token = await _token(client)
        response = await client.get(
            "/identity/v1/people", headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 200, response.text
    emails = {person.get("email") for person in response.json()["items"]}
    assert "admin@demo.example" in emails


async def test_courses_are_listed_through_the_gateway_from_the_training_service(
    platform: Platform,
) -> None:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10) as client:
        token = await _token(client)
        response = await client.get(
            "/training/v1/courses", headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 200, response.text
    assert isinstance(response.json()["items"], list)


async def test_the_first_read_of_the_merged_document_has_every_service(
    platform: Platform,
) -> None:
    """Each served app builds its document in a child on the first request for it
    (kit/documents.py), the gateway's merged one included: the gateway's first read, which
    waits for all of them at once, still takes in every service's."""
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=120) as client:
        merged = await client.get("/openapi.json")
        cases = await client.get("/cases/openapi.json")

    assert merged.status_code == 200, merged.text
    document = merged.json()
    assert "x-upstander-missing" not in document, document.get("x-upstander-missing")
    assert {"/auth/token", "/intake/v1/reports", "/cases/v1/cases"} <= set(document["paths"])
    assert {"/training/v1/courses", "/notify/v1/inbox"} <= set(document["paths"])
    assert cases.status_code == 200
    assert cases.headers["content-type"] == "application/json"
    assert "/cases/v1/cases" in cases.json()["paths"]


def test_every_process_exits_cleanly_when_stopped(platform: Platform) -> None:
    # Last in the module: it stops the shared platform (the fixture's own stop is then a no-op).
    codes = platform.stop(grace=5.0)

    assert set(codes) == set(APPS)
    assert all(child.process.poll() is not None for child in platform.children.values())
    # After a graceful shutdown uvicorn exits 0 or re-raises SIGTERM (-15, uvicorn >= 0.29);
    # -9 would mean a child ignored SIGTERM for 5 s and was killed.
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), codes
