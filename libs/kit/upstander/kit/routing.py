"""Reading an app's route table: its routes through included routers, and each route's
dependencies at any depth. For start-up checks and documentation, never per request."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def dependants(root: Any) -> Iterator[Any]:
    """`root` (a FastAPI `Dependant`) and every dependency under it, at any depth."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.dependencies)


def original_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route as declared, included routers seen through (FastAPI ≥ 0.160 keeps an
    included router as one entry). Unlike `fastapi.routing.iter_route_contexts`, this does not
    build the routes' effective state, which FastAPI otherwise builds on the first request."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from original_routes(included.routes)
        else:
            yield route
