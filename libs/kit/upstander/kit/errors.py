"""RFC 9457 problem+json: domain errors, and the one place they become HTTP responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from upstander.kit.db import is_database_unavailable
from upstander.kit.edge import HANDLED, Answer, EdgeMiddleware, Exchange

PROBLEM_BASE = "https://upstander.dev/problems/"
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("upstander.errors")

_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    408: ("request-timeout", "Request timeout"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation error"),
    428: ("precondition-required", "Precondition required"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    502: ("bad-gateway", "Bad gateway"),
    503: ("service-unavailable", "Service unavailable"),
    504: ("gateway-timeout", "Gateway timeout"),
}


class FieldError(BaseModel):
    field: str = Field(examples=["body.description"])
    message: str = Field(examples=["Field required"])


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["No such case."])
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None

    model_config = {"extra": "allow"}


class ProblemError(Exception):
    """Base of every domain error; `status` and `slug` choose the problem type."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(
            detail or "A valid bearer token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="upstander", error="invalid_token"'},
            **extra,
        )


class TokenRevoked(Unauthorized):
    """A well-formed token whose subject's access changed (deactivated, roles changed, removed
    from the organisation) after it was signed: sign in again (`upstander.kit.revocation`)."""

    status, slug, title = 401, "token-revoked", "Token revoked"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        ProblemError.__init__(
            self,
            detail or "Your access changed since this token was issued; sign in again.",
            headers={
                "WWW-Authenticate": 'Bearer realm="upstander", error="invalid_token", '
                'error_description="The token was revoked"'
            },
            **extra,
        )


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class DatabaseUnavailable(ProblemError):
    """The app's database cannot be reached or did not answer in time (`kit.db`
    `is_database_unavailable`): a 503 the caller may retry, never a 500."""

    status, slug, title = 503, "database-unavailable", "Database unavailable"
    retry_after_seconds = 5

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail or "The service's database is unavailable right now; retry shortly.",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(
            detail or "Too many requests; retry later.",
            headers={"Retry-After": str(max(1, int(retry_after)))},
        )


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    slug: str | None = None,
    title: str | None = None,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    default_slug, default_title = _STATUS_SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "Malformed JSON."
    if kind == "extra_forbidden":
        return "Unknown field."
    return str(error.get("msg", "Invalid value."))


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        request=request,
        headers=exc.headers,
        **exc.extra,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(e.get("loc", ())), "message": _validation_message(e)}
        for e in exc.errors()
    ]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem_response(
            400,
            "The request body is not valid JSON.",
            slug="malformed-json",
            title="Malformed JSON",
            request=request,
            errors=errors,
        )
    return problem_response(422, "The request did not validate.", request=request, errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    return problem_response(exc.status_code, detail, request=request, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        # An outage, not a bug: one line with the error's class (its message can hold SQL),
        # and a 503 the caller may retry.
        log.warning(
            "database unavailable",
            extra={"path": request.url.path, "error": type(exc).__name__},
        )
        return await _on_problem(request, DatabaseUnavailable())
    # Logged with the request id (from the log context), never returned to the caller.
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        500, "An unexpected error occurred; it has been logged.", request=request
    )


class UnexpectedErrors:
    """Edge step (kit/edge.py), the innermost: turn an exception that no handler took into a
    500 problem, sent as a normal response (a 503 `database-unavailable` when the database is
    down or did not answer in time).

    Starlette's last-resort handler (`ServerErrorMiddleware`) sends its 500 and then re-raises,
    and uvicorn answers a re-raised error by closing the connection: the client's next request
    on that keep-alive connection fails. Here the error ends with the response instead. It sits
    inside the kit's other steps: the 500 still carries the request id, reaches the access log,
    and releases an idempotency key."""

    name = "unexpected_errors"

    def enter(self, exchange: Exchange) -> None:
        exchange.on_error(self._caught)

    @staticmethod
    async def _caught(exchange: Exchange, exc: Exception) -> Answer | object | None:
        if isinstance(exc, StarletteHTTPException):
            # An answer, not an unexpected error: a body the kit's `BodyGuard` refused while
            # it was being read (408, 413) where no app handler stood in between (the
            # gateway's proxy lane). The step outside that raised it renders it.
            return None
        scope = exchange.scope
        if exchange.finished:
            # The response went out whole (the error came from work after it: a background
            # task, a dependency's teardown); the connection is fine.
            log.exception(
                "error after the response", extra={"path": scope.get("path")}, exc_info=exc
            )
            return HANDLED
        if exchange.started:
            # Part of a response is already out; dropping the connection is the only honest
            # way to end it.
            return None
        response = await _on_unexpected(Request(scope), exc)
        return Answer(response.status_code, response.raw_headers, bytes(response.body))


class UnexpectedErrorMiddleware(EdgeMiddleware):
    """`UnexpectedErrors` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, steps=[UnexpectedErrors()])


def install_problem_handlers(app: FastAPI, *, catch_unexpected: bool = True) -> None:
    """The problem handlers, and (unless `catch_unexpected` is false: the kit's app adds the
    `UnexpectedErrors` step to its edge instead) the middleware that answers what no handler
    took."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    # The fallback for errors raised outside the middleware below (in outer middleware).
    app.add_exception_handler(Exception, _on_unexpected)
    if catch_unexpected:
        app.add_middleware(UnexpectedErrorMiddleware)
    document_body_errors(app)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})


def document_body_errors(app: FastAPI) -> None:
    """Document, on every operation that takes a request body, the 400 problem its body gets
    when it cannot be parsed (`malformed-json`, or FastAPI's "error parsing the body" for an
    undecodable form): the handlers above answer it on every route, so every route says so. And
    the `Problem` component that `problem_responses` refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        added = False
        for item in schema.get("paths", {}).values():
            for method, operation in item.items():
                if method in _HTTP_METHODS and "requestBody" in operation:
                    responses = operation.setdefault("responses", {})
                    if "400" not in responses:
                        responses["400"] = {
                            "description": _STATUS_SLUGS[400][1],
                            "content": {
                                PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}
                            },
                        }
                        added = True
        if added or _REF.format(model="Problem") in json.dumps(schema.get("paths", {})):
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in _problem_components().items():
                schemas.setdefault(name, definition)
            # FastAPI keeps the components in name order
            schema["components"]["schemas"] = dict(sorted(schemas.items()))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_REF = "#/components/schemas/{model}"


@functools.cache
def _problem_components() -> dict[str, Any]:
    """The `Problem` component and those it refers to, exactly as FastAPI writes a response
    model's (in the document only: built when the document is)."""
    probe = FastAPI(openapi_url="/openapi.json")

    @probe.get("/", responses={400: {"model": Problem}})
    async def _probe() -> None:
        return None

    schemas: dict[str, Any] = probe.openapi()["components"]["schemas"]
    return {name: schemas[name] for name in schemas if name in ("Problem", "FieldError")}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each listed status documented as a `Problem` (problem+json,
    and application/json as OpenAPI always showed it). The schema is referenced, not given as
    `model=`: FastAPI builds a pydantic adapter for every `model` of every route (twice for a
    route of an included router), about 8 KB each and never used to answer a request, some 3
    MB an app (docs/performance.md). `document_body_errors` adds the `Problem` component to
    the document."""
    schema = {"schema": {"$ref": _REF.format(model="Problem")}}
    return {
        status: {
            "content": {PROBLEM_JSON: dict(schema), "application/json": dict(schema)},
            "description": _STATUS_SLUGS.get(status, ("", "Error"))[1],
        }
        for status in statuses
    }
