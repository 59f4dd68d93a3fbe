"""The merged OpenAPI document (`/openapi.json`) and its Swagger UI (`/docs`): the gateway's
own routes plus every service's, fetched from the services and cached for a minute."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from upstander.gateway.edge.health import remove_routes
from upstander.gateway.proxy.upstreams import SERVICES, UpstreamPool, get_upstreams
from upstander.kit.clock import Clock

log = logging.getLogger("upstander.gateway.openapi")

CACHE_SECONDS = 60.0
# When a service was missing, try again sooner than a full minute.
PARTIAL_CACHE_SECONDS = 5.0
FETCH_TIMEOUT_SECONDS = 3.0
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
        self._cached: dict[str, Any] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

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

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached is not None and self._now() < self._expires:
                return self._cached
            fetched = await asyncio.gather(*(self._fetch(name) for name in self.services))
            documents = {n: d for n, d in zip(self.services, fetched, strict=True) if d}
            missing = [n for n, d in zip(self.services, fetched, strict=True) if not d]
            self._cached = merge_openapi(self.app.openapi(), documents, missing)
            self._expires = self._now() + (PARTIAL_CACHE_SECONDS if missing else self.ttl)
            return self._cached

    def invalidate(self) -> None:
        self._cached = None


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

    async def openapi_document(request: Request) -> Response:
        return JSONResponse(await merged.document())

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
