"""The platform as one: gateway → service → database → response, through real apps."""

from __future__ import annotations

import asyncio

from harness import Platform


async def test_health_shows_every_service_up(platform: Platform) -> None:
    # A probe, as a load balancer's: each check has 2 s, and all five apps share this test's
    # event loop, so a machine loaded by the other pass can make one probe time out; the
    # platform must answer up within a few.
    for _ in range(5):
        response = await platform.gateway.get("/healthz")
        if response.status_code == 200:
            break
        await asyncio.sleep(1)
    assert response.status_code == 200, response.text
    services = response.json()["services"]
    for name in ("intake", "cases", "training", "notify"):
        assert services[name]["status"] == "ok", services


async def test_admin_lists_the_directory_through_the_gateway(platform: Platform) -> None:
    headers = await platform.auth("admin@demo.example")
    response = await platform.gateway.get("/identity/v1/people?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    emails = {person["email"] for person in response.json()["items"]}
    assert {"admin@demo.example", "case_manager@demo.example", "staff@demo.example"} <= emails


async def test_trainer_creates_and_reads_a_course_through_the_gateway(platform: Platform) -> None:
    headers = await platform.auth("trainer@demo.example")
    created = await platform.gateway.post(
        "/training/v1/courses",
        json={
            "title": "Bystander intervention: the five Ds",
            "kind": "bystander_intervention",
            "duration_minutes": 60,
            "languages": ["en", "es"],
            "interactive": True,
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    course_id = created.json()["id"]
    response = await platform.gateway.get(f"/training/v1/courses/{course_id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["title"] == "Bystander intervention: the five Ds"
    assert response.headers["x-request-id"]


async def test_directory_events_reach_the_services(platform: Platform) -> None:
    await platform.drain()
    # intake learned the demo org from the gateway's org.created event: its form is public.
    form = await platform.gateway.get("/intake/v1/forms/demo?lang=es")
    assert form.status_code == 200, form.text
    assert form.json()["lang"] == "es"


async def test_merged_openapi_documents_every_service(platform: Platform) -> None:
    response = await platform.gateway.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/auth/token",
        "/auth/receipt",
        "/identity/v1/people",
        "/intake/v1/forms/{org}",
        "/intake/v1/reports",
        "/cases/v1/cases",
        "/cases/v1/reporter/messages",
        "/training/v1/courses",
        "/notify/v1/inbox",
    ):
        assert path in paths, path
    assert not any("/internal/" in path for path in paths)


async def test_a_token_from_another_issuer_is_refused_by_a_service(platform: Platform) -> None:
    response = await platform.gateway.get(
        "/cases/v1/cases", headers={"authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
