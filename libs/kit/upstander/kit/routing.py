"""Reading an app's route table: its routes through included routers, and each route's
dependencies at any depth (for start-up checks and documentation, never per request); and the
leaner dependency tree a route's requests solve (`runtime_dependant`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, replace
from enum import Enum
from operator import attrgetter
from typing import Any

import fastapi.params
import fastapi.routing
from fastapi._compat import field_annotation_is_sequence, get_missing_field_error
from fastapi.dependencies.models import _get_cache_key, _get_oauth_scopes
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    request_params_to_args,
    solve_dependencies,
)
from fastapi.exceptions import RequestValidationError
from fastapi.security import SecurityScopes
from starlette.concurrency import run_in_threadpool


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


def _prune(router: Any, paths: set[str], prefix: str) -> None:
    kept: list[Any] = []
    for route in router.routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            # FastAPI ≥ 0.160 keeps an included router as one entry (`_IncludedRouter`).
            context = getattr(route, "include_context", None)
            _prune(included, paths, prefix + str(getattr(context, "prefix", "") or ""))
            kept.append(route)
        elif prefix + str(getattr(route, "path", "")) not in paths:
            kept.append(route)
    router.routes[:] = kept
    mark_changed = getattr(router, "_mark_routes_changed", None)
    if callable(mark_changed):
        mark_changed()


def remove_routes(app: Any, paths: set[str]) -> None:
    """Drop the app's routes at `paths`, included routers' too (e.g. the kit's `/healthz`, or
    FastAPI's document route, which `kit.app` serves itself)."""
    _prune(app.router, paths, "")
    app.openapi_schema = None


# ----------------------------------------------------------------------------- runtime tree

DOCUMENTATION_ONLY = "__upstander_documentation_only__"


def documentation_only(scheme: Any) -> Any:
    """Mark a security scheme that a route depends on only to document it (OpenAPI's
    `security` and `securitySchemes`): its value is never read and, with `auto_error=False`,
    it never refuses. `runtime_dependant` leaves it out of the tree a request solves."""
    if getattr(scheme, "auto_error", True):
        raise ValueError("a documentation-only security scheme must not refuse (auto_error)")
    setattr(scheme, DOCUMENTATION_ONLY, True)
    return scheme


def _is_documentation_only(node: Any) -> bool:
    return getattr(node.call, DOCUMENTATION_ONLY, False) is True


def _has_parameters(node: Any) -> bool:
    """Whether anything in `node`'s tree reads the request's parameters or body, and so can
    fail validation."""
    return any(
        n.path_params or n.query_params or n.header_params or n.cookie_params or n.body_params
        for n in dependants(node)
    )


def runtime_dependant(documented: Any) -> Any:
    """The dependency tree a request solves, from the tree a route documents: the same
    dependencies called in the same order with the same values and the same errors, less
    FastAPI's work that changes nothing (docs/performance.md):

    - a documentation-only security scheme (`documentation_only`) is left out: the function
      that declares it gets the parameter's default, which it never reads;
    - a dependency met again, once FastAPI has solved and cached it, keeps no sub-dependencies:
      FastAPI would solve them again only to use the cached value. Only when its tree reads no
      request parameter, so that the first solving could not have failed validation (a failed
      one is not cached, and FastAPI would call the function again with its sub-dependencies);
    - when every dependency is a coroutine function and no part of the tree reads a body, the
      tree is solved by `_Plan` (below) instead of FastAPI's generic solver.

    The documented tree is left as it was: OpenAPI is generated from it."""
    solved: set[Any] = set()

    def visit(node: Any) -> Any:
        # A cache key depends on the tree under a node (whether anything in it uses scopes):
        # a sub-tree is left out only when the node keeps the key it was cached under.
        alone = replace(node, dependencies=[])
        if (
            node.use_cache
            and not _has_parameters(node)
            and _get_cache_key(dependant=alone) in solved
        ):
            return alone
        kept = [visit(sub) for sub in node.dependencies if not _is_documentation_only(sub)]
        runtime = replace(node, dependencies=kept)
        solved.add(_get_cache_key(dependant=runtime))
        return runtime

    pruned = visit(documented)
    return _Plan.root_for(pruned) if _Plan.can_solve(pruned) else pruned


# The parameters a planned route's stand-in endpoint takes from FastAPI.
_REQUEST, _RESPONSE, _TASKS = "_upstander_request", "_upstander_response", "_upstander_tasks"


_IMMUTABLE_DEFAULTS = (type(None), bool, int, float, str, bytes, Enum)


@dataclass(frozen=True, slots=True)
class _Param:
    """One path, query, header or cookie parameter as `_Plan` reads it: what FastAPI's
    `request_params_to_args` works out about the field on every request (its request key,
    whether it takes every value of a repeated key, whether its default must be copied),
    worked out once. A parameter FastAPI reads another way (a parameter model, several
    aliases) or whose default comes from a factory is read by FastAPI's function."""

    field: Any
    name: str
    alias: str
    loc: tuple[str, str]
    many: bool  # a list parameter of the query or the headers: every value of the key
    sequence: bool  # a list parameter: an empty one is a missing one
    required: bool
    default: Any
    copy_default: bool
    validate_default: bool
    by_fastapi: bool

    @classmethod
    def of(cls, field: Any, *, multi: bool) -> _Param:
        info = field.field_info
        aliases = _get_param_aliases(field)
        sequence = field_annotation_is_sequence(info.annotation)
        default = None if info.is_required() else field.default
        return cls(
            field=field,
            name=field.name,
            alias=aliases[0][1],
            loc=(info.in_.value, aliases[0][1]),
            many=multi and sequence and not _is_json_field(field),
            sequence=sequence,
            required=info.is_required(),
            default=default,
            copy_default=not isinstance(default, _IMMUTABLE_DEFAULTS),
            validate_default=bool(info.validate_default),
            by_fastapi=(
                _get_param_model(field) is not None
                or len(aliases) != 1
                or not isinstance(info, fastapi.params.Param)
                or info.default_factory is not None  # called afresh for every request
            ),
        )

    def read(self, source: Any, values: dict[str, Any], errors: list[Any]) -> None:
        """As `request_params_to_args` reads the field from `source`: into `values`, or its
        errors into `errors`."""
        if self.by_fastapi:
            given, wrong = request_params_to_args([self.field], source)
            values.update(given)
            errors.extend(wrong)
            return
        value = source.getlist(self.alias) if self.many else source.get(self.alias)
        if value is None or (self.sequence and len(value) == 0):
            if self.required:
                errors.append(get_missing_field_error(loc=self.loc))
                return
            value = deepcopy(self.default) if self.copy_default else self.default
            if not self.validate_default:
                values[self.name] = value
                return
        validated, wrong = self.field.validate(value, values, loc=self.loc)
        if wrong:
            errors.extend(wrong)
        else:
            values[self.name] = validated


@dataclass(frozen=True, slots=True)
class _Step:
    """One dependency (or the endpoint) as `_Plan` solves it: everything FastAPI works out
    from the `Dependant` on every request, worked out once."""

    call: Any
    name: str | None
    key: Any
    use_cache: bool
    subs: tuple[_Step, ...]
    params: tuple[tuple[Callable[[Any], Any], tuple[_Param, ...]], ...]  # (where, which)
    request_names: tuple[str, ...]  # Request and HTTPConnection parameters
    response_name: str | None
    tasks_name: str | None
    scopes_name: str | None
    scopes: tuple[str, ...]

    @classmethod
    def of(cls, node: Any) -> _Step:
        params = tuple(
            (attrgetter(source), tuple(_Param.of(field, multi=multi) for field in fields))
            for source, fields, multi in (
                ("path_params", node.path_params, False),
                ("query_params", node.query_params, True),
                ("headers", node.header_params, True),
                ("cookies", node.cookie_params, False),
            )
            if fields
        )
        return cls(
            call=node.call,
            name=node.name,
            key=_get_cache_key(dependant=node),
            use_cache=node.use_cache,
            subs=tuple(cls.of(sub) for sub in node.dependencies),
            params=params,
            request_names=tuple(
                name for name in (node.http_connection_param_name, node.request_param_name) if name
            ),
            response_name=node.response_param_name,
            tasks_name=node.background_tasks_param_name,
            scopes_name=node.security_scopes_param_name,
            scopes=tuple(_get_oauth_scopes(dependant=node)),
        )


class _Plan:
    """A route's dependencies solved as FastAPI's `solve_dependencies` solves them (depth
    first, in declaration order; a cached value reused; a dependency whose own parameters or
    sub-dependencies failed validation not called; every validation error collected, then one
    `RequestValidationError`), without its per-request bookkeeping: classifying each callable,
    walking the tree for cache keys and scopes, a recursive call and four parameter passes per
    dependency. FastAPI calls the plan as the route's endpoint (`root_for`); the plan calls the
    real endpoint. With dependency overrides set (tests) it hands the request to FastAPI's
    solver, which applies them."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree  # the pruned tree: what FastAPI's solver gets when overrides are set
        self.root = _Step.of(tree)
        self.endpoint_is_async = inspect.iscoroutinefunction(tree.call)

    @staticmethod
    def can_solve(root: Any) -> bool:
        """Every dependency a plain coroutine function (no generator, no class, no thread),
        no body anywhere (FastAPI reads and parses it before solving; left to FastAPI), no
        WebSocket."""
        call = root.call
        if (
            call is None
            or root.websocket_param_name
            or not inspect.isfunction(call)
            or inspect.isgeneratorfunction(call)
            or inspect.isasyncgenfunction(call)
        ):
            return False
        for node in dependants(root):
            if node.body_params or node.websocket_param_name:
                return False
            if node is not root and (
                not inspect.iscoroutinefunction(node.call) or node.concurrency is not None
            ):
                return False
        return True

    @classmethod
    def root_for(cls, root: Any) -> Any:
        """A `Dependant` for FastAPI whose endpoint is the plan: it takes only the request,
        FastAPI's sub-response (headers and status a dependency sets) and, when the tree
        asks for them, the background tasks."""
        plan = cls(root)
        wants_tasks = any(n.background_tasks_param_name for n in dependants(root))

        @functools.wraps(root.call)
        async def planned(**given: Any) -> Any:
            return await plan.run(given[_REQUEST], given[_RESPONSE], given.get(_TASKS))

        planned.__upstander_plan__ = plan  # type: ignore[attr-defined]
        return replace(
            root,
            call=planned,
            dependencies=[],
            path_params=[],
            query_params=[],
            header_params=[],
            cookie_params=[],
            request_param_name=_REQUEST,
            http_connection_param_name=None,
            response_param_name=_RESPONSE,
            background_tasks_param_name=_TASKS if wants_tasks else None,
            security_scopes_param_name=None,
        )

    async def run(self, request: Any, response: Any, tasks: Any) -> Any:
        overrides = getattr(request.app, "dependency_overrides", None)
        if overrides:
            values, errors = await self._fastapi(request, response, tasks)
        else:
            values, errors = await self._solve(self.root, request, response, tasks, {})
        if errors:
            raise RequestValidationError(errors)
        if self.endpoint_is_async:
            return await self.root.call(**values)
        return await run_in_threadpool(self.root.call, **values)

    async def _solve(
        self, step: _Step, request: Any, response: Any, tasks: Any, cache: dict[Any, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for sub in step.subs:
            sub_values, sub_errors = await self._solve(sub, request, response, tasks, cache)
            if sub_errors:
                errors.extend(sub_errors)
                continue
            if sub.use_cache and sub.key in cache:
                solved = cache[sub.key]
            else:
                solved = await sub.call(**sub_values)
                cache.setdefault(sub.key, solved)
            if sub.name is not None:
                values[sub.name] = solved
        for where, fields in step.params:
            source = where(request)
            for field in fields:
                field.read(source, values, errors)
        for name in step.request_names:
            values[name] = request
        if step.tasks_name:
            values[step.tasks_name] = tasks
        if step.response_name:
            values[step.response_name] = response
        if step.scopes_name:
            values[step.scopes_name] = SecurityScopes(scopes=list(step.scopes))
        return values, errors

    async def _fastapi(
        self, request: Any, response: Any, tasks: Any
    ) -> tuple[dict[str, Any], list[Any]]:
        solved = await solve_dependencies(
            request=request,
            dependant=self.tree,
            background_tasks=tasks,
            response=response,
            dependency_overrides_provider=request.app,
            async_exit_stack=request.scope["fastapi_inner_astack"],
            embed_body_fields=False,
        )
        return solved.values, solved.errors


@contextmanager
def runtime_dependencies(route: Any) -> Iterator[None]:
    """While a route builds its request handler (`APIRoute.get_route_handler`), let it see
    `runtime_dependant`'s tree; its documented tree is back in place afterwards. For a route of
    an included router FastAPI builds the handler for the router's effective copy of the
    route, which it names in a context variable while it does (FastAPI ≥ 0.160: "integrations
    may wrap dependant.call while constructing the handler")."""
    building = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = building.get() if building is not None else None
    target = context if context is not None and context.original_route is route else route
    documented = target.dependant
    target.dependant = runtime_dependant(documented)
    try:
        yield
    finally:
        target.dependant = documented
