"""The xAPI 1.0.3 Learning Record Store routes (`/training/v1/xapi/`): about and statements.

LMSs talk to it with a bearer token of the platform (a person who is trainer or admin, or an
API client with scope `xapi:write` or `training:write`); every response carries
`X-Experience-API-Version`, every request but `/about` must send it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, PrincipalKind, current_principal
from upstander.kit.db import get_session
from upstander.kit.errors import BadRequest, Forbidden, problem_responses
from upstander.kit.scopes import Scope as ApiScope
from upstander.kit.scopes import require_scope
from upstander.training.access import clock_of, org_of
from upstander.training.settings import Settings
from upstander.training.xapi import service
from upstander.training.xapi.schemas import (
    VERSIONS,
    agent_identifier,
    canonical,
    is_iri,
    parse_timestamp,
    parse_uuid,
)

PREFIX = "/training/v1/xapi"
STATEMENTS = PREFIX + "/statements"
VERSION = "1.0.3"
WRITE_ROLES = ("trainer", "admin")
READ_ROLES = (*WRITE_ROLES, "auditor")
WRITE_SCOPES = ("xapi:write", "training:write")
READ_SCOPES = (*WRITE_SCOPES, "xapi:read", "training:read")
FILTERS = (
    "agent",
    "verb",
    "activity",
    "registration",
    "since",
    "until",
    "limit",
    "ascending",
    "related_activities",
    "related_agents",
    "cursor",
)

router = make_router(prefix=PREFIX, tags=["xapi"])


class XapiVersionMiddleware:
    """Stamp `X-Experience-API-Version` on every response of the LRS, errors included, and
    `X-Experience-API-Consistent-Through` on every GET of statements: one database, so every
    statement stored is visible at once and the LRS is consistent through now."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-experience-api-version", VERSION.encode()))
                if scope["method"] in ("GET", "HEAD") and scope["path"] == STATEMENTS:
                    now = scope["app"].state.clock.now().isoformat()
                    headers.append((b"x-experience-api-consistent-through", now.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


async def xapi_version(request: Request) -> None:
    version = request.headers.get("x-experience-api-version")
    if version is None:
        raise BadRequest("The X-Experience-API-Version header is required.")
    if not version.strip().startswith("1.0"):
        raise BadRequest(f"xAPI version {version[:20]!r} is not supported; use 1.0.3.")


def _caller(roles: tuple[str, ...], scopes: tuple[str, ...]) -> Any:
    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if (
            principal.kind not in (PrincipalKind.STAFF, PrincipalKind.CLIENT)
            or not principal.org_id
        ):
            raise Forbidden("The LRS is for an organisation's people and API clients.")
        if not (principal.has_role(*roles) or any(principal.has_scope(s) for s in scopes)):
            raise Forbidden("Your role or the client's scopes do not allow this.")
        return principal

    return Depends(dependency)


writer = _caller(WRITE_ROLES, WRITE_SCOPES)
reader = _caller(READ_ROLES, READ_SCOPES)


def _authority(principal: Principal) -> str:
    return f"{principal.kind.value}:{principal.subject}"


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The body is not valid JSON.") from exc


class About(BaseModel):
    version: list[str] = Field(examples=[list(VERSIONS)])


class StatementResult(BaseModel):
    statements: list[dict[str, Any]]
    more: str = Field("", description="Path of the next page; empty on the last page.")


@router.get(
    "/about",
    operation_id="get_xapi_about",
    summary="The xAPI versions this LRS speaks (no version header or credentials needed)",
    response_model=About,
    responses={},
)
async def get_about() -> About:
    return About(version=list(VERSIONS))


STATEMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [{"type": "object"}, {"type": "array"}]},
                "example": {
                    "actor": {"mbox": "mailto:dana@demo.example"},
                    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                    "object": {"id": "https://lms.example.org/xapi/activities/bystander-101"},
                    "result": {"duration": "PT1H", "score": {"scaled": 0.92}},
                },
            }
        },
    }
}


@router.put(
    "/statements",
    operation_id="put_xapi_statement",
    summary="Store one statement under the given id (the same id again: same content only)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[Depends(xapi_version), require_scope(ApiScope.XAPI_WRITE)],
    responses=problem_responses(400, 409, 413, 415),
    openapi_extra=STATEMENT_BODY,
)
async def put_statement(
    request: Request,
    statement_id: str | None = Query(None, alias="statementId"),
    principal: Principal = writer,
    session: AsyncSession = Depends(get_session),
) -> Response:
    if statement_id is None:
        raise BadRequest("PUT /statements needs the statementId parameter.")
    wanted = parse_uuid(statement_id, "statementId")
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("PUT /statements takes one statement (a JSON object).")
    if "id" in body and parse_uuid(body["id"], "id") != wanted:
        raise BadRequest("The statement's id differs from the statementId parameter.")
    body = {**body, "id": str(wanted)} if "id" not in body else body
    await service.store_statements(
        session,
        org_of(principal),
        [body],
        authority=_authority(principal),
        now=clock_of(request).now(),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/statements",
    operation_id="post_xapi_statements",
    summary="Store one statement or a list of them (all or nothing); returns their ids",
    response_model=list[str],
    dependencies=[Depends(xapi_version), require_scope(ApiScope.XAPI_WRITE)],
    responses=problem_responses(400, 409, 413, 415),
    openapi_extra=STATEMENT_BODY,
)
async def post_statements(
    request: Request,
    principal: Principal = writer,
    session: AsyncSession = Depends(get_session),
) -> list[str]:
    body = await _json_body(request)
    statements = body if isinstance(body, list) else [body]
    ids = await service.store_statements(
        session,
        org_of(principal),
        statements,
        authority=_authority(principal),
        now=clock_of(request).now(),
    )
    return [str(statement_id) for statement_id in ids]


def _boolean(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false.")
    return value.lower() == "true"


def _limit(value: str | None, maximum: int) -> int:
    if value is None:
        return min(100, maximum)
    try:
        limit = int(value)
    except ValueError as exc:
        raise BadRequest("limit must be a whole number.") from exc
    if limit < 0:
        raise BadRequest("limit must not be negative.")
    return maximum if limit == 0 else min(limit, maximum)


def _filters(request: Request) -> service.StatementFilters:
    params = request.query_params
    agent = None
    if params.get("agent") is not None:
        try:
            parsed = json.loads(params["agent"])
        except ValueError as exc:
            raise BadRequest("agent must be an Agent or Group as JSON.") from exc
        agent = canonical(agent_identifier(parsed, "agent"))
        if agent is None:
            raise BadRequest("agent must be identified (mbox, mbox_sha1sum, openid, account).")
    for name in ("verb", "activity"):
        if params.get(name) is not None and not is_iri(params[name]):
            raise BadRequest(f"{name} must be an IRI.")
    since = params.get("since")
    until = params.get("until")
    registration = params.get("registration")
    _boolean(params.get("related_activities"), "related_activities")
    _boolean(params.get("related_agents"), "related_agents")
    return service.StatementFilters(
        agent=agent,
        verb=params.get("verb"),
        activity=params.get("activity"),
        registration=parse_uuid(registration, "registration") if registration else None,
        since=parse_timestamp(since, "since") if since else None,
        until=parse_timestamp(until, "until") if until else None,
        ascending=_boolean(params.get("ascending"), "ascending"),
    )


def _more_link(request: Request, cursor: str | None) -> str:
    if cursor is None:
        return ""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return f"{STATEMENTS}?" + urlencode([*kept, ("cursor", cursor)])


@router.get(
    "/statements",
    operation_id="get_xapi_statements",
    summary="One statement (statementId, voidedStatementId) or the statements that match",
    description=(
        "Filters: `agent` (JSON), `verb`, `activity`, `registration`, `since`, `until` (stored "
        "time), `limit` (0: the most a page holds), `ascending`. Voided statements are only "
        "returned through `voidedStatementId`. `more` is the path of the next page."
    ),
    response_model=StatementResult | dict[str, Any],
    dependencies=[Depends(xapi_version), require_scope(ApiScope.XAPI_READ)],
    responses=problem_responses(400, 404),
)
async def get_statements(
    request: Request,
    statement_id: str | None = Query(None, alias="statementId"),
    voided_statement_id: str | None = Query(None, alias="voidedStatementId"),
    agent: str | None = Query(None, description="An Agent or Group, as JSON."),
    verb: str | None = Query(None, description="A verb IRI."),
    activity: str | None = Query(None, description="An activity IRI (the object)."),
    registration: str | None = Query(None),
    since: str | None = Query(None, description="Stored after this time (ISO 8601)."),
    until: str | None = Query(None, description="Stored at or before this time (ISO 8601)."),
    limit: str | None = Query(None, description="Statements per page; 0 for the most."),
    ascending: str | None = Query(None, description="`true`: oldest first."),
    principal: Principal = reader,
    session: AsyncSession = Depends(get_session),
) -> JSONResponse:
    # The parameters document the API; values are read raw below so that every malformed
    # one is an xAPI 400 rather than a 422. The middleware adds Consistent-Through.
    org_id = org_of(principal)
    params = request.query_params
    single = [name for name in ("statementId", "voidedStatementId") if name in params]
    if single:
        others = [name for name in FILTERS if name in params]
        if len(single) > 1 or others:
            raise BadRequest(f"{single[0]} cannot be combined with {(single[1:] + others)[0]}.")
        name = single[0]
        found = await service.get_statement(
            session, org_id, parse_uuid(params[name], name), voided=name == "voidedStatementId"
        )
        return JSONResponse(found)
    settings: Settings = request.app.state.settings
    statements, cursor = await service.query_statements(
        session,
        org_id,
        _filters(request),
        limit=_limit(params.get("limit"), settings.xapi_max_limit),
        cursor=params.get("cursor"),
    )
    return JSONResponse({"statements": statements, "more": _more_link(request, cursor)})
