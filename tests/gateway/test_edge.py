"""The gateway's edge: rate limits, platform health, merged OpenAPI, security headers, CORS."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from edge_support import EdgeSettings, client_for, edge_app, fake_service
from fastapi import FastAPI
from pydantic import BaseModel, create_model

from upstander.gateway.edge import GrowingDelayLimiter, SlidingWindowLimiter, install_security
from upstander.kit.clock import FrozenClock
from upstander.kit.testing import RoutingTransport

SERVICES = ("intake", "cases", "training", "notify")


@pytest.fixture
def settings() -> EdgeSettings:
    return EdgeSettings(cors_origins=["https://campaign.example"])


def routing_for(settings: EdgeSettings, apps: dict[str, FastAPI]) -> RoutingTransport:
    transport = RoutingTransport()
    for name, app in apps.items():
        transport.add(settings.service_url(name), app)
    return transport


# Rate limits -------------------------------------------------------------------------------


async def test_auth_requests_over_the_limit_get_429_with_retry_after(settings: EdgeSettings):
    clock = FrozenClock()
    app = edge_app(settings, RoutingTransport(), clock=clock)
    async with client_for(app) as client:
        statuses = [(await client.post("/auth/token")).status_code for _ in range(30)]
        refused = await client.post("/auth/token", headers={"X-Request-ID": "rl-1"})
        async with client_for(app, ip="198.51.100.20") as other_source:
            elsewhere = await other_source.post("/auth/token")
        clock.advance(timedelta(seconds=61))
        later = await client.post("/auth/token")

    assert statuses == [200] * 30
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "60"
    assert refused.json()["type"].endswith("/rate-limited")
    assert refused.headers["x-request-id"] == "rl-1"
    assert refused.json()["request_id"] == "rl-1"
    assert elsewhere.status_code == 200
    assert later.status_code == 200


async def test_paths_outside_auth_are_not_rate_limited(settings: EdgeSettings):
    app = edge_app(settings.model_copy(update={"auth_rate_limit_per_minute": 1}), None)
    app.state.auth_source_limiter.hit("unrelated")
    async with client_for(app) as client:
        docs = [(await client.get("/docs")).status_code for _ in range(5)]

    assert docs == [200] * 5


def test_sliding_window_frees_slots_as_old_hits_age_out():
    clock = FrozenClock()
    limiter = SlidingWindowLimiter(2, 60, clock=clock)

    assert limiter.hit("client:a") is None
    clock.advance(timedelta(seconds=30))
    assert limiter.hit("client:a") is None
    assert limiter.hit("client:a") == 30
    assert limiter.hit("client:b") is None
    clock.advance(timedelta(seconds=30))
    assert limiter.hit("client:a") is None


def test_growing_delay_doubles_after_free_failures_and_resets_on_success():
    clock = FrozenClock()
    limiter = GrowingDelayLimiter(free_failures=3, base_delay=10, max_delay=35, clock=clock)

    assert [limiter.failure("org:code") for _ in range(2)] == [None, None]
    assert limiter.check("org:code") is None
    assert limiter.failure("org:code") == 10
    assert limiter.check("org:code") == 10
    clock.advance(timedelta(seconds=10))
    assert limiter.check("org:code") is None
    assert limiter.failure("org:code") == 20
    clock.advance(timedelta(seconds=20))
    assert limiter.failure("org:code") == 35  # capped
    clock.advance(timedelta(seconds=35))
    limiter.success("org:code")
    assert limiter.failure("org:code") is None
    assert limiter.check("org:code") is None


# Health ------------------------------------------------------------------------------------


async def test_health_reports_every_service_ok(settings: EdgeSettings):
    transport = routing_for(settings, {name: fake_service(name) for name in SERVICES})
    async with client_for(edge_app(settings, transport)) as client:
        response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "services": {name: {"status": "ok"} for name in ("gateway", *SERVICES)},
    }


async def test_health_is_degraded_503_when_a_service_is_down(settings: EdgeSettings):
    up = {name: fake_service(name) for name in ("intake", "cases", "training")}
    async with client_for(edge_app(settings, routing_for(settings, up))) as client:
        response = await client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"]["notify"]["status"] == "unavailable"
    assert {body["services"][name]["status"] for name in ("gateway", *up)} == {"ok"}


async def test_health_replaces_the_kit_route_and_is_documented(settings: EdgeSettings):
    app = edge_app(settings, RoutingTransport())

    async with client_for(app) as client:
        response = await client.get("/healthz")
    assert set(response.json()["services"]) == {"gateway", *SERVICES}
    assert app.openapi()["paths"]["/healthz"]["get"]["operationId"] == "get_platform_health"


# OpenAPI -----------------------------------------------------------------------------------


class Shared(BaseModel):
    id: str


CasesItem = create_model("Item", number=(int, ...))
TrainingItem = create_model("Item", title=(str, ...))


def cases_docs_service() -> FastAPI:
    app = fake_service("cases")

    @app.get("/cases/v1/items", operation_id="list_items", tags=["cases"])
    async def items() -> list[CasesItem]:  # type: ignore[valid-type]
        return []

    @app.get("/cases/v1/shared", tags=["cases"])
    async def shared() -> Shared:
        return Shared(id="x")

    return app


def training_docs_service() -> FastAPI:
    app = fake_service("training")

    @app.get("/training/v1/items", operation_id="list_items", tags=["training"])
    async def items() -> list[TrainingItem]:  # type: ignore[valid-type]
        return []

    @app.get("/training/v1/shared", tags=["training"])
    async def shared() -> Shared:
        return Shared(id="x")

    return app


async def test_merged_openapi_has_every_service_and_renames_colliding_schemas(
    settings: EdgeSettings,
):
    apps = {"cases": cases_docs_service(), "training": training_docs_service()}
    async with client_for(edge_app(settings, routing_for(settings, apps))) as client:
        document = (await client.get("/openapi.json")).json()

    paths = document["paths"]
    assert document["openapi"].startswith("3.1")
    assert {"/auth/token", "/healthz", "/cases/v1/items", "/training/v1/items"} <= set(paths)
    assert "/readyz" not in paths and "/metrics" not in paths
    schemas = document["components"]["schemas"]
    assert schemas["Item"]["properties"].keys() == {"number"}
    assert schemas["training_Item"]["properties"].keys() == {"title"}
    assert "training_Shared" not in schemas and "Shared" in schemas

    def ref(path: str) -> str:
        content = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        return content["schema"]["items"]["$ref"]

    assert ref("/cases/v1/items") == "#/components/schemas/Item"
    assert ref("/training/v1/items") == "#/components/schemas/training_Item"
    assert paths["/training/v1/items"]["get"]["operationId"] == "training_list_items"
    assert {"cases", "training"} <= {tag["name"] for tag in document.get("tags", [])}
    assert document["x-upstander-missing"] == ["intake", "notify"]


async def test_merged_openapi_is_cached_for_a_minute(settings: EdgeSettings):
    clock = FrozenClock()
    transport = routing_for(settings, {name: fake_service(name) for name in SERVICES})
    app = edge_app(settings, transport, clock=clock)
    async with client_for(app) as client:
        first = (await client.get("/openapi.json")).json()
        transport.remove(settings.service_url("cases"))
        cached = (await client.get("/openapi.json")).json()
        clock.advance(timedelta(seconds=61))
        refreshed = (await client.get("/openapi.json")).json()

    assert "x-upstander-missing" not in first
    assert cached == first
    assert refreshed["x-upstander-missing"] == ["cases"]


async def test_docs_page_points_at_the_merged_document(settings: EdgeSettings):
    async with client_for(edge_app(settings, RoutingTransport())) as client:
        response = await client.get("/docs")

    assert response.status_code == 200
    assert "/openapi.json" in response.text
    assert "cdn.jsdelivr.net" in response.headers["content-security-policy"]


# Security headers and CORS -----------------------------------------------------------------


async def test_api_responses_carry_strict_security_headers(settings: EdgeSettings):
    async with client_for(edge_app(settings, RoutingTransport())) as client:
        response = await client.get("/openapi.json")
        token = await client.post("/auth/token")

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    csp = response.headers["content-security-policy"]
    assert csp == "default-src 'none'; frame-ancestors 'none'"
    assert "strict-transport-security" not in response.headers
    assert token.headers["cache-control"] == "no-store"


async def test_proxied_authorised_json_is_not_cached(settings: EdgeSettings):
    transport = routing_for(settings, {"cases": fake_service("cases")})
    async with client_for(edge_app(settings, transport)) as client:
        response = await client.get("/cases/v1/headers", headers={"Authorization": "Bearer x"})

    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


async def test_production_mode_adds_hsts():
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    install_security(app, SimpleNamespace(mode="production", cors_origins=[]))
    async with client_for(app) as client:
        response = await client.get("/ping")

    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_allows_configured_origins_only(settings: EdgeSettings):
    async with client_for(edge_app(settings, RoutingTransport())) as client:
        allowed = await client.get("/openapi.json", headers={"Origin": "https://campaign.example"})
        preflight = await client.options(
            "/cases/v1/cases",
            headers={
                "Origin": "https://campaign.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        other = await client.get("/openapi.json", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://campaign.example"
    exposed = allowed.headers["access-control-expose-headers"].lower()
    assert {"x-request-id", "etag", "retry-after", "location"} <= {
        h.strip() for h in exposed.split(",")
    }
    assert "access-control-allow-credentials" not in allowed.headers
    assert preflight.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_when_no_origins_are_configured():
    async with client_for(edge_app(EdgeSettings(), RoutingTransport())) as client:
        response = await client.get("/openapi.json", headers={"Origin": "https://campaign.example"})

    assert "access-control-allow-origin" not in response.headers


async def test_install_edge_on_a_kit_app_replaces_its_health_and_docs(settings: EdgeSettings):
    from upstander.gateway.edge import install_edge
    from upstander.kit.app import ServiceSpec, create_service_app

    kit_settings = settings.model_copy(update={"database_url": ""})
    transport = routing_for(settings, {name: fake_service(name) for name in SERVICES})
    app = create_service_app(
        kit_settings, ServiceSpec(name="gateway", title="Upstander", description="gw")
    )
    install_edge(app, kit_settings, transport=transport)
    async with client_for(app) as client:
        health = await client.get("/healthz")
        document = (await client.get("/openapi.json")).json()
        proxied = await client.get("/cases/v1/headers")

    assert set(health.json()["services"]) == {"gateway", *SERVICES}
    assert "x-upstander-missing" not in document
    assert proxied.status_code == 200
