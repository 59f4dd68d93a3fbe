"""`problem_responses` documents a route's problem statuses by reference: the OpenAPI document
shows each as a `Problem` (problem+json, and application/json as it always did) with the
component in place, while FastAPI builds no pydantic adapter for them (one per status per
route, twice for an included router's route, used only for the document)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from upstander.kit.app import make_router
from upstander.kit.errors import document_body_errors, problem_responses
from upstander.kit.routing import original_routes

PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


def _app() -> FastAPI:
    app = FastAPI()
    router = make_router(prefix="/things", tags=["things"])

    @router.get("/{thing_id}", responses=problem_responses(409))
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    app.include_router(router)
    document_body_errors(app)
    return app


def test_the_document_shows_each_problem_status_and_the_component() -> None:
    document = _app().openapi()

    responses = document["paths"]["/things/{thing_id}"]["get"]["responses"]
    for status in ("401", "403", "404", "409", "422", "500", "503"):
        assert responses[status]["content"] == {
            "application/problem+json": PROBLEM,
            "application/json": PROBLEM,
        }, status
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status"]
    assert schemas["Problem"]["properties"]["errors"]["anyOf"][0]["items"] == {
        "$ref": "#/components/schemas/FieldError"
    }
    assert "FieldError" in schemas
    assert list(schemas) == sorted(schemas)


def test_no_adapter_is_built_for_a_problem_status() -> None:
    app = _app()
    app.openapi()  # builds the included router's effective routes too
    routes = [r for r in original_routes(app.router.routes) if isinstance(r, APIRoute)]
    assert routes
    for route in routes:
        assert route.response_fields == {}, route.path
