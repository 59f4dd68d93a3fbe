"""The tree a route's requests solve (`upstander.kit.routing.runtime_dependant`): the same
answers as FastAPI's own solver for every request, the documented tree (OpenAPI) unchanged,
and less work: documentation-only security schemes never called, a cached dependency's
sub-tree not solved again, and the whole tree solved by a plan instead of FastAPI's generic
solver when it can be.

Each app below is built twice from the same endpoints: once with `CommittingRoute` (the kit's
routes) and once with FastAPI's plain `APIRoute`; every request must get the same answer from
both."""

from __future__ import annotations

import collections
import itertools
from enum import StrEnum
from typing import Any

import httpx
import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Cookie,
    Depends,
    FastAPI,
    Header,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer, SecurityScopes
from pydantic import BaseModel

from upstander.kit.db import CommittingRoute
from upstander.kit.routing import documentation_only, original_routes, runtime_dependant

CALLS: collections.Counter[str] = collections.Counter()
COUNTER = itertools.count()
LAST_STAMP: dict[str, int] = {}
TASKS: list[str] = []


class CountedBearer(HTTPBearer):
    async def __call__(self, request: Request) -> Any:
        CALLS["scheme"] += 1
        return await super().__call__(request)


SCHEME = documentation_only(CountedBearer(scheme_name="Doc", auto_error=False))


class Unauthorised(Exception):
    pass


async def who(request: Request) -> str:
    CALLS["who"] += 1
    token = request.headers.get("authorization")
    if token is None:
        raise Unauthorised()
    return token.removeprefix("Bearer ")


async def gate(
    security_scopes: SecurityScopes, user: str = Depends(who), _doc: Any = Depends(SCHEME)
) -> str:
    CALLS["gate"] += 1
    return f"{user}:{'+'.join(security_scopes.scopes)}"


async def paging(
    limit: int = Query(50, ge=1, le=200), cursor: str | None = Query(None, max_length=10)
) -> dict[str, Any]:
    return {"limit": limit, "cursor": cursor}


async def stamped(response: Response, tasks: BackgroundTasks) -> None:
    response.headers["X-Stamp"] = "yes"
    response.status_code = 203
    tasks.add_task(TASKS.append, "ran")


API_KEY = APIKeyHeader(name="x-key", auto_error=False)  # a scheme whose value is read


async def keyed(key: str | None = Depends(API_KEY)) -> str:
    return f"key:{key}"


async def twice(first: str = Depends(keyed), second: str = Depends(keyed)) -> str:
    return f"{first}|{second}"


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Note(BaseModel):
    text: str


def routes(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)

    @router.get("/items/{item_id}", dependencies=[Depends(gate)])
    async def item(
        item_id: int,
        kind: str | None = Query(None, pattern="^[a-z]+$"),
        flag: bool = Query(False),
        page: dict[str, Any] = Depends(paging),
        user: str = Depends(who),
        x_trace: str | None = Header(None, max_length=5),
    ) -> dict[str, Any]:
        return {
            "item": item_id,
            "kind": kind,
            "flag": flag,
            "page": page,
            "user": user,
            "trace": x_trace,
        }

    @router.get("/scoped")
    async def scoped(
        gated: str = Depends(gate), again: str = Depends(gate), user: str = Depends(who)
    ) -> dict[str, str]:
        return {"gated": gated, "again": again, "user": user}

    @router.get("/stamped", dependencies=[Depends(stamped)])
    async def stamped_route(request: Request) -> dict[str, str]:
        return {"path": request.url.path}

    @router.get("/sync")
    def sync_route(user: str = Depends(who), limit: int = Query(3)) -> dict[str, Any]:
        return {"user": user, "limit": limit}

    @router.get("/shapes/{name}")
    async def shapes(
        name: str,
        need: int = Query(..., ge=0),
        tags: list[str] = Query([]),
        colour: Colour = Query(Colour.RED),
        text: str = Query("dflt", alias="query-text", min_length=2),
        session_id: str | None = Cookie(None),
        x_many: list[str] = Header([]),
        stamp: int = Query(default_factory=lambda: next(COUNTER)),
    ) -> dict[str, Any]:
        tags.append("mine")  # a default handed out twice must be a copy
        previous = LAST_STAMP.get(route_class.__name__)
        LAST_STAMP[route_class.__name__] = stamp
        return {
            "name": name,
            "need": need,
            "tags": tags,
            "colour": colour,
            "text": text,
            "session": session_id,
            "many": x_many,
            "fresh_default": stamp != previous,  # a default factory is called per request
        }

    @router.get("/keyed")
    async def keyed_route(both: str = Security(twice, scopes=["s"])) -> dict[str, str]:
        return {"both": both}

    @router.post("/notes", status_code=201)
    async def note(note: Note, user: str = Depends(who)) -> dict[str, str]:
        return {"text": note.text, "user": user}

    return router


def build(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(Unauthorised)
    async def unauthorised(request: Request, exc: Unauthorised) -> Response:
        return Response(status_code=401)

    app.include_router(routes(route_class), prefix="/v1")
    return app


REQUESTS: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/v1/items/7", {"authorization": "Bearer ann"}, None),
    (
        "GET",
        "/v1/items/7?kind=abc&flag=true&limit=3&cursor=x",
        {"authorization": "Bearer ann"},
        None,
    ),
    # validation errors from the route and from a sub-dependency, all reported together
    (
        "GET",
        "/v1/items/seven?kind=ABC&limit=0&cursor=far-too-long",
        {"authorization": "Bearer a"},
        None,
    ),
    ("GET", "/v1/items/7", {"authorization": "Bearer ann", "x-trace": "too-long-trace"}, None),
    # no token: the gate refuses before any parameter is looked at
    ("GET", "/v1/items/seven?limit=0", {}, None),
    ("GET", "/v1/scoped", {"authorization": "Bearer bo"}, None),
    ("GET", "/v1/stamped", {}, None),
    ("GET", "/v1/sync?limit=9", {"authorization": "Bearer cy"}, None),
    ("GET", "/v1/sync?limit=nine", {"authorization": "Bearer cy"}, None),
    ("GET", "/v1/shapes/a?need=1", {}, None),
    ("GET", "/v1/shapes/a?need=1", {}, None),  # the list default is not the one mutated above
    (
        "GET",
        "/v1/shapes/b?need=2&tags=x&tags=y&colour=blue&query-text=hey",
        {"cookie": "session_id=s1", "x-many": "m1"},
        None,
    ),
    ("GET", "/v1/shapes/c?tags=x&colour=green&query-text=h", {}, None),
    ("GET", "/v1/shapes/d?need=-1&need=3", {}, None),
    # a dependency met twice under scopes, its tree holding a scheme whose value is read
    ("GET", "/v1/keyed", {"x-key": "abc"}, None),
    ("POST", "/v1/notes", {"authorization": "Bearer di"}, {"text": "hello"}),
    ("POST", "/v1/notes", {"authorization": "Bearer di"}, {"text": 5}),
    ("POST", "/v1/notes", {}, {"text": 5}),
]


async def answers(app: FastAPI) -> list[tuple[int, Any, str | None]]:
    found = []
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for method, path, headers, body in REQUESTS:
            response = await client.request(method, path, headers=headers, json=body)
            payload = response.json() if response.content else None
            found.append((response.status_code, payload, response.headers.get("x-stamp")))
    return found


async def test_the_kit_route_answers_every_request_as_fastapis_solver_does() -> None:
    TASKS.clear()
    theirs = await answers(build(APIRoute))
    assert TASKS == ["ran"]
    ours = await answers(build(CommittingRoute))
    assert TASKS == ["ran", "ran"]

    for request, mine, fastapis in zip(REQUESTS, ours, theirs, strict=True):
        assert mine == fastapis, request
    # The answers are the ones meant, not just equal.
    statuses = [200, 200, 422, 422, 401, 200, 203, 200, 422, 200, 200, 200, 422, 200, 200]
    assert [status for status, _, _ in ours] == [*statuses, 201, 422, 401]
    assert ours[14][1] == {"both": "key:abc|key:abc"}
    both = ours[2][1]["detail"]
    assert [e["loc"] for e in both] == [
        ["query", "limit"],
        ["query", "cursor"],
        ["path", "item_id"],
        ["query", "kind"],
    ]
    assert ours[5][1] == {"gated": "bo:", "again": "bo:", "user": "bo"}
    assert ours[6][2] == "yes"
    assert ours[10][1]["tags"] == ["mine"]
    assert ours[11][1] == {
        "name": "b",
        "need": 2,
        "tags": ["x", "y", "mine"],
        "colour": "blue",
        "text": "hey",
        "session": "s1",
        "many": ["m1"],
        "fresh_default": True,
    }
    assert ours[10][1]["fresh_default"] is True
    assert [e["loc"] for e in ours[12][1]["detail"]] == [
        ["query", "need"],
        ["query", "colour"],
        ["query", "query-text"],
    ]
    assert ours[13][1]["need"] == 3  # the last of a repeated key, as Starlette's get


async def test_each_dependency_runs_once_and_documentation_only_schemes_never() -> None:
    app = build(CommittingRoute)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        CALLS.clear()
        response = await client.get("/v1/scoped", headers={"authorization": "Bearer bo"})
        assert response.status_code == 200
        assert CALLS == {"who": 1, "gate": 1}

    fastapis = build(APIRoute)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(fastapis), base_url="http://test"
    ) as client:
        CALLS.clear()
        await client.get("/v1/scoped", headers={"authorization": "Bearer bo"})
        assert CALLS == {"who": 1, "gate": 1, "scheme": 1}  # FastAPI calls the scheme


def test_openapi_is_generated_from_the_documented_tree() -> None:
    ours, theirs = build(CommittingRoute), build(APIRoute)
    transport_free = ours.openapi()
    assert transport_free == theirs.openapi()
    assert transport_free["paths"]["/v1/items/{item_id}"]["get"]["security"] == [{"Doc": []}]
    names = [p["name"] for p in transport_free["paths"]["/v1/items/{item_id}"]["get"]["parameters"]]
    assert names == ["item_id", "kind", "flag", "limit", "cursor", "x-trace"]


async def test_dependency_overrides_still_apply() -> None:
    app = build(CommittingRoute)

    async def nobody() -> str:
        return "override"

    app.dependency_overrides[who] = nobody
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://test"
    ) as client:
        response = await client.get("/v1/scoped")
        TASKS.clear()
        stamped = await client.get("/v1/stamped")
    assert response.json() == {"gated": "override:", "again": "override:", "user": "override"}
    # FastAPI's solver, which applies overrides, still gets the request's background tasks
    # and sub-response
    assert (stamped.status_code, stamped.headers["x-stamp"], TASKS) == (203, "yes", ["ran"])


def test_only_a_tree_without_a_body_is_planned() -> None:
    app = build(CommittingRoute)
    planned = {
        route.path: hasattr(runtime_dependant(route.dependant).call, "__upstander_plan__")
        for route in original_routes(app.router.routes)
        if isinstance(route, APIRoute)
    }
    assert planned == {
        "/items/{item_id}": True,
        "/scoped": True,
        "/stamped": True,
        "/sync": True,
        "/shapes/{name}": True,
        "/keyed": False,  # a scheme instance (not a coroutine function): FastAPI's solver
        "/notes": False,  # FastAPI reads and parses a body before it solves: left to FastAPI
    }


def test_a_scheme_that_could_refuse_is_not_documentation_only() -> None:
    with pytest.raises(ValueError, match="auto_error"):
        documentation_only(HTTPBearer())
