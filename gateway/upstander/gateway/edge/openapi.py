"""The merged OpenAPI document (`/openapi.json`) and its Swagger UI (`/docs`): the gateway's
own routes plus every service's, fetched from the services and cached for a minute."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from upstander.gateway.proxy.upstreams import SERVICES, UpstreamPool, get_upstreams
from upstander.kit.clock import Clock
from upstander.kit.documents import Built, ServedDocument, render
from upstander.kit.routing import remove_routes

log = logging.getLogger("upstander.gateway.openapi")

CACHE_SECONDS = 60.0
# When a service was missing, try again sooner than a full minute.
PARTIAL_CACHE_SECONDS = 5.0
# A service builds its document on the first read of it, in a child process (kit/documents.py:
# about 1.3 s of CPU; the four at once, beside the gateway's own child, take several seconds
# on two cores). A service that is down refuses at once; one that hangs costs this once.
FETCH_TIMEOUT_SECONDS = 30.0
SKIPPED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    """Rewrite `$ref`s to renamed components (`#/components/<kind>/<name>`), in place."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in renames:
            node["$ref"] = renames[ref]
        for value in node.values():
            _rewrite_refs(value, renames)
    elif isinstance(node, list):
        for item in node:
            _rewrite_refs(item, renames)
    return node


def _rename_security(spec: dict[str, Any], renames: dict[str, str]) -> None:
    def rewrite(requirements: Any) -> Any:
        if not isinstance(requirements, list):
            return requirements
        return [
            {renames.get(name, name): scopes for name, scopes in requirement.items()}
            for requirement in requirements
        ]

    if "security" in spec:
        spec["security"] = rewrite(spec["security"])
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict) and "security" in operation:
                operation["security"] = rewrite(operation["security"])


def _ref(kind: str, name: str) -> str:
    return f"#/components/{kind}/{name}"


def _settle_component_names(
    service: str, spec: dict[str, Any], components: dict[str, dict[str, Any]]
) -> dict[tuple[str, str], str]:
    """The new names, by (kind, name), of `service`'s components whose names the merged
    document already uses for different content.

    Content is compared *after* this service's references are rewritten: `Page_PersonOut_`
    reads the same in two services, yet when their `PersonOut`s differ so do their pages. So
    the renames are settled to a fixed point: renaming a component can make the components
    that refer to it differ in turn. Security schemes hold no references; their names are
    what security requirements use."""
    own: dict[str, dict[str, Any]] = spec.get("components") or {}
    renamed: dict[tuple[str, str], str] = {}
    taken = {(kind, entry) for kind, entries in components.items() for entry in entries}
    taken |= {(kind, entry) for kind, entries in own.items() for entry in entries}

    def new_name(kind: str, entry_name: str) -> str:
        final, counter = f"{service}_{entry_name}", 2
        while (kind, final) in taken:
            final, counter = f"{service}_{entry_name}_{counter}", counter + 1
        taken.add((kind, final))
        return final

    changed = True
    while changed:
        changed = False
        ref_renames = _ref_renames(renamed)
        for kind, entries in own.items():
            existing = components.get(kind, {})
            for entry_name, entry in entries.items():
                if entry_name not in existing or (kind, entry_name) in renamed:
                    continue
                if kind != "securitySchemes":
                    entry = _rewrite_refs(copy.deepcopy(entry), ref_renames)
                if _canonical(existing[entry_name]) != _canonical(entry):
                    renamed[(kind, entry_name)] = new_name(kind, entry_name)
                    changed = True
    return renamed


def _ref_renames(renamed: dict[tuple[str, str], str]) -> dict[str, str]:
    return {
        _ref(kind, name): _ref(kind, final)
        for (kind, name), final in renamed.items()
        if kind != "securitySchemes"
    }


def merge_openapi(
    gateway: dict[str, Any], services: dict[str, dict[str, Any]], missing: list[str]
) -> dict[str, Any]:
    """One OpenAPI 3.1 document from the gateway's and the services' documents.

    Paths are taken as they are (a service's already carry its prefix), except operational ones.
    A component whose name another part already uses with different content (compared once
    the service's references are rewritten) is renamed `<service>_<name>`, and that service's
    references follow; duplicate operation ids are prefixed the same way.
    """
    merged = copy.deepcopy(gateway)
    merged["openapi"] = "3.1.0"
    merged.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = merged.setdefault("components", {})
    tags: list[dict[str, Any]] = list(merged.get("tags", []))
    tag_names = {tag["name"] for tag in tags}
    operation_ids = {
        operation.get("operationId")
        for item in merged["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS and isinstance(operation, dict)
    }

    for name, original in services.items():
        spec = copy.deepcopy(original)
        # Components first: settle the names, then rewrite this service's references.
        renamed = _settle_component_names(name, spec, components)
        _rewrite_refs(spec, _ref_renames(renamed))
        scheme_renames = {n: f for (kind, n), f in renamed.items() if kind == "securitySchemes"}
        if scheme_renames:
            _rename_security(spec, scheme_renames)
        for kind, entries in (spec.get("components") or {}).items():
            target = components.setdefault(kind, {})
            for entry_name, entry in entries.items():
                # Unrenamed and already present means the same content: keep the first.
                target.setdefault(renamed.get((kind, entry_name), entry_name), entry)

        for path, item in (spec.get("paths") or {}).items():
            if path in SKIPPED_PATHS or path.startswith(f"/{name}/internal/"):
                continue
            if path in merged["paths"]:
                log.warning("path %s from %s already documented; kept the first", path, name)
                continue
            for method, operation in item.items():
                if method in HTTP_METHODS and isinstance(operation, dict):
                    operation_id = operation.get("operationId")
                    if operation_id and operation_id in operation_ids:
                        operation["operationId"] = f"{name}_{operation_id}"
                    operation_ids.add(operation.get("operationId"))
            merged["paths"][path] = item

        for tag in spec.get("tags") or []:
            if tag.get("name") not in tag_names:
                tags.append(tag)
                tag_names.add(tag.get("name"))
        if spec.get("webhooks"):
            merged.setdefault("webhooks", {}).update(spec["webhooks"])

    for item in merged["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                for tag in operation.get("tags", []):
                    if tag not in tag_names:
                        tags.append({"name": tag})
                        tag_names.add(tag)
    if tags:
        merged["tags"] = tags
    if not components:
        merged.pop("components", None)
    if missing:
        merged["x-upstander-missing"] = sorted(missing)
    return merged


# ----------------------------------------------------------------------------- for generators
#
# What every operation shares, said once here rather than in each service: the headers the
# edge and the kit honour, and the answers they may give to any request. Generated clients
# (openapi-python-client, openapi-typescript; tests/contract/test_openapi_generators.py) then
# know them, and a generator never meets two schemas of one title or an array of nothing.

PROBLEM_REF = "#/components/schemas/Problem"
XAPI_PREFIX = "/training/v1/xapi/"
XAPI_ABOUT = "/training/v1/xapi/about"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# The token endpoints are authenticated by client credentials and never replayed.
NOT_IDEMPOTENT_PREFIXES = ("/auth/",)

IDEMPOTENCY_KEY = "IdempotencyKey"
XAPI_VERSION = "XExperienceApiVersion"
XAPI_VERSION_OPTIONAL = "XExperienceApiVersionOptional"
RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
    "example": 30,
}
PARAMETERS: dict[str, dict[str, Any]] = {
    IDEMPOTENCY_KEY: {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Any unique string (a UUID) to make a retried write safe: the first response to "
            "a key is stored for 24 hours and replayed to retries with "
            "`Idempotent-Replayed: true`. The same key with a different request is 422 "
            "(`idempotency-key-reused`); one still being processed is 409. Keys belong to "
            "the caller's token; writes without a token are never replayed."
        ),
        # No example: a key is fresh for each write (a tool reusing one would be refused).
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    XAPI_VERSION: {
        "name": "X-Experience-API-Version",
        "in": "header",
        "required": True,
        "description": "The xAPI version of the request (1.0.x); the LRS answers 400 "
        "without it and states its own version in every response.",
        "schema": {"type": "string", "pattern": r"^1\.0(\.\d+)?$"},
        "example": "1.0.3",
    },
    XAPI_VERSION_OPTIONAL: {
        "name": "X-Experience-API-Version",
        "in": "header",
        "required": False,
        "description": "Optional here: `/about` says which versions the LRS speaks.",
        "schema": {"type": "string", "pattern": r"^1\.0(\.\d+)?$"},
        "example": "1.0.3",
    },
}
XAPI_VERSION_HEADER = {
    "description": "The xAPI version of the LRS's answer.",
    "schema": {"type": "string"},
    "example": "1.0.3",
}


def _problem_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _may_be_a_problem(responses: dict[str, Any], status: str, description: str) -> None:
    """`status` documented, with a problem among its media types."""
    response = responses.setdefault(status, _problem_response(description))
    response.setdefault("content", {}).setdefault(
        "application/problem+json", {"schema": {"$ref": PROBLEM_REF}}
    )


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in (document.get("paths") or {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                yield path, method, operation


def _has_parameter(operation: dict[str, Any], name: str, ref: str) -> bool:
    for parameter in operation.get("parameters") or []:
        if parameter.get("$ref") == ref:
            return True
        if parameter.get("in") == "header" and str(parameter.get("name", "")).lower() == name:
            return True
    return False


def _add_parameter(operation: dict[str, Any], key: str) -> None:
    ref = _ref("parameters", key)
    if not _has_parameter(operation, PARAMETERS[key]["name"].lower(), ref):
        operation.setdefault("parameters", []).append({"$ref": ref})


def _takes_a_token(operation: dict[str, Any]) -> bool:
    return any(requirement for requirement in operation.get("security") or [])


def _unique_titles(schemas: dict[str, Any]) -> None:
    """Generators name a model by its schema's `title`: two components with one title (a
    service's `PersonOut` renamed `training_PersonOut` keeps the title `PersonOut`) would be
    two classes of one name. The later one takes its component name as its title."""
    seen: set[str] = set()
    for name, schema in schemas.items():
        if not isinstance(schema, dict):
            continue
        title = schema.get("title", name)
        if title in seen:
            schema["title"] = title = name
        seen.add(title)


def _arrays_of_something(node: Any) -> None:
    """An array schema without `items` means any items (JSON Schema); say so, for the
    generators that want `items`."""
    if isinstance(node, dict):
        if node.get("type") == "array" and "items" not in node and "prefixItems" not in node:
            node["items"] = {}
        for value in node.values():
            _arrays_of_something(value)
    elif isinstance(node, list):
        for item in node:
            _arrays_of_something(item)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def _shared_request_schemas(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A body taken as several media types (`application/scim+json` and `application/json`)
    with one inline schema: the schema becomes a component that each refers to, so a
    generator makes one model, not one per media type of the same name."""
    content = (operation.get("requestBody") or {}).get("content") or {}
    inline = [
        media
        for media in content.values()
        if isinstance(media.get("schema"), dict)
        and "$ref" not in media["schema"]
        and media["schema"].get("type") == "object"
    ]
    if len(inline) < 2 or len({_canonical(media["schema"]) for media in inline}) != 1:
        return
    name = _pascal(str(operation.get("operationId") or "Request")) + "Body"
    while name in schemas and _canonical(schemas[name]) != _canonical(inline[0]["schema"]):
        name += "_"
    schemas[name] = {"title": name, **inline[0]["schema"]}
    for media in inline:
        media["schema"] = {"$ref": _ref("schemas", name)}


def polish(document: dict[str, Any]) -> dict[str, Any]:
    """Document, on every operation: 429 with `Retry-After` (the edge's rate limits) and 500
    and 503 as problems; `Idempotency-Key` on every write that takes a token (the kit's
    middleware on the gateway honours it for any of them); `X-Experience-API-Version` on the
    xAPI operations. Then make schema titles unique and give item-less arrays their `items`.
    In place; returns the document."""
    components: dict[str, Any] = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    schemas.setdefault(
        "Problem",
        {
            "title": "Problem",
            "type": "object",
            "description": "An RFC 9457 problem.",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
            "additionalProperties": True,
        },
    )
    parameters: dict[str, Any] = components.setdefault("parameters", {})
    for key, parameter in PARAMETERS.items():
        parameters.setdefault(key, copy.deepcopy(parameter))

    for path, method, operation in _operations(document):
        _shared_request_schemas(operation, schemas)
        responses: dict[str, Any] = operation.setdefault("responses", {})
        _may_be_a_problem(responses, "429", "Too many requests: wait `Retry-After` seconds.")
        responses["429"].setdefault("headers", {}).setdefault(
            "Retry-After", copy.deepcopy(RETRY_AFTER)
        )
        _may_be_a_problem(responses, "500", "Internal error (a bug; reported).")
        responses.setdefault("503", _problem_response("Unavailable for now: retry later."))
        if (
            method in WRITE_METHODS
            and _takes_a_token(operation)
            and not path.startswith(NOT_IDEMPOTENT_PREFIXES)
        ):
            _add_parameter(operation, IDEMPOTENCY_KEY)
            # A malformed key; the key's request still running; the key with another request.
            # The kit answers these as problems, whatever else the operation answers with.
            _may_be_a_problem(responses, "400", "Bad request.")
            _may_be_a_problem(responses, "409", "Conflict.")
            _may_be_a_problem(responses, "422", "Validation error.")
        if path.startswith(XAPI_PREFIX) or path == XAPI_ABOUT:
            _add_parameter(operation, XAPI_VERSION_OPTIONAL if path == XAPI_ABOUT else XAPI_VERSION)
            _may_be_a_problem(responses, "400", "Bad request (e.g. no xAPI version).")
            for status, response in responses.items():
                if isinstance(response, dict) and str(status).startswith("2"):
                    response.setdefault("headers", {}).setdefault(
                        "X-Experience-API-Version", copy.deepcopy(XAPI_VERSION_HEADER)
                    )

    _unique_titles(schemas)
    _arrays_of_something(document.get("paths"))
    _arrays_of_something(schemas)
    return document


class MergedOpenAPI:
    """Fetches the services' documents and merges them with the gateway's, with a cache."""

    def __init__(
        self,
        app: FastAPI,
        pool: UpstreamPool,
        *,
        services: tuple[str, ...] = SERVICES,
        clock: Clock | None = None,
        ttl: float = CACHE_SECONDS,
    ) -> None:
        self.app = app
        self.pool = pool
        self.services = services
        self.clock = clock
        self.ttl = ttl
        self.served = ServedDocument(self.build, now=self._now)

    def _now(self) -> float:
        clock = self.clock or getattr(self.app.state, "clock", None) or Clock()
        return clock.now().timestamp()

    async def _fetch(self, service: str) -> dict[str, Any] | None:
        url = f"{self.pool.base_url(service)}/{service}/openapi.json"
        try:
            response = await self.pool.client(service).get(url, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("no OpenAPI from %s: %s", service, type(exc).__name__)
            return None
        return document if isinstance(document, dict) else None

    async def build(self) -> Built:
        """The merged document, kept a minute (5 s when a service was missing). The route
        serves it through `served`: built by a child when the gateway is served, so that the
        gateway keeps its bytes, not the five documents it was made from."""
        fetched = await asyncio.gather(*(self._fetch(name) for name in self.services))
        documents = {n: d for n, d in zip(self.services, fetched, strict=True) if d}
        missing = [n for n, d in zip(self.services, fetched, strict=True) if not d]
        merged = polish(merge_openapi(self.app.openapi(), documents, missing))
        return Built(render(merged), PARTIAL_CACHE_SECONDS if missing else self.ttl)

    def invalidate(self) -> None:
        self.served.invalidate()


def install_openapi(
    app: FastAPI,
    settings: Any,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> MergedOpenAPI:
    """Serve the merged document at `/openapi.json` and Swagger UI at `/docs`, replacing the
    routes FastAPI made for the gateway's own document."""
    openapi_url = app.openapi_url or "/openapi.json"
    docs_url = app.docs_url or "/docs"
    oauth_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    remove_routes(
        app,
        {
            openapi_url,
            docs_url,
            docs_url + "/oauth2-redirect",
            oauth_redirect,
            *([app.redoc_url] if app.redoc_url else []),
        },
    )
    merged = MergedOpenAPI(app, get_upstreams(app, settings, transport), clock=clock)
    app.state.merged_openapi = merged
    # What the document child builds (`upstander.kit.documents`): the merged document.
    app.state.served_document = merged.served

    async def openapi_document(request: Request) -> Response:
        return Response(await merged.served.body(), media_type="application/json")

    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API reference",
            oauth2_redirect_url=oauth_redirect,
        )

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route(openapi_url, openapi_document, methods=["GET"], include_in_schema=False)
    app.add_route(docs_url, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_route(oauth_redirect, swagger_ui_redirect, methods=["GET"], include_in_schema=False)
    return merged
