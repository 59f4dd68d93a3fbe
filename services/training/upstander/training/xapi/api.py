"""The xAPI 1.0.3 Learning Record Store (`/training/v1/xapi/`): About, Statements (with
attachments), State, Activity Profile, Agent Profile, Agents and Activities.

Callers: a bearer token of the platform (a trainer or admin, or an API client with scope
`xapi:read` / `xapi:write`), or — through the gateway — HTTP Basic with an API client's id and
secret (docs/xapi.md). Every response carries `X-Experience-API-Version`; every request but
`/about` must send it. HEAD is answered wherever GET is, and the Alternate Request Syntax
(`POST ...?method=PUT` with a form) is understood (`XapiVersionMiddleware`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, PrincipalKind, current_principal
from upstander.kit.db import get_session
from upstander.kit.errors import (
    PROBLEM_BASE,
    PROBLEM_JSON,
    BadRequest,
    Forbidden,
    problem_responses,
)
from upstander.kit.scopes import Scope as ApiScope
from upstander.kit.scopes import require_scope
from upstander.training.access import clock_of, org_of
from upstander.training.settings import Settings
from upstander.training.xapi import content, documents, service
from upstander.training.xapi import validation as rules
from upstander.training.xapi.schemas import (
    agent_identifier,
    canonical,
    parse_timestamp,
    parse_uuid,
)

PREFIX = "/training/v1/xapi"
STATEMENTS = PREFIX + "/statements"
ABOUT = PREFIX + "/about"
VERSION = "1.0.3"
VERSIONS = ["1.0.3", "1.0.0"]
WRITE_ROLES = ("trainer", "admin")
READ_ROLES = (*WRITE_ROLES, "auditor")
WRITE_SCOPES = ("xapi:write", "training:write")
READ_SCOPES = (*WRITE_SCOPES, "xapi:read", "training:read")
SINGLE = ("statementId", "voidedStatementId")
QUERY = (
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
    "cursor",
)
FORMATS = ("ids", "exact", "canonical")
# Alternate Request Syntax: form fields that are headers.
FORM_HEADERS = (
    "authorization",
    "x-experience-api-version",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
)
ALTERNATE_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
MAX_FORM_BYTES = 10 * 1024 * 1024
VERSION_PATTERN = re.compile(r"^1\.0(\.\d+)?$")

router = make_router(prefix=PREFIX, tags=["xapi"])


# ----------------------------------------------------------------------------- the edge


def _problem(
    scope: Scope, status_code: int, detail: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps(
        {
            "type": PROBLEM_BASE + "bad-request",
            "title": "Bad request",
            "status": status_code,
            "detail": detail,
            "instance": scope["path"],
        }
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-experience-api-version", VERSION.encode()),
    ]
    return headers, body


class XapiVersionMiddleware:
    """The LRS's edge, before routing: the Alternate Request Syntax (a form POST with
    `?method=`, turned into the request it stands for), the version header (400 when missing
    or not 1.0.x, except on `/about`), HEAD answered as GET without a body, and the headers
    every answer carries: `X-Experience-API-Version`, and on statement reads
    `X-Experience-API-Consistent-Through` (one database: consistent through now)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if any(name == "method" for name, _ in query):
            rewritten = await self._alternate(scope, receive, query)
            if isinstance(rewritten, str):
                await self._refuse(scope, send, rewritten)
                return
            scope, receive = rewritten
        if scope["path"] != ABOUT:
            version = _header(scope, b"x-experience-api-version")
            if version is None:
                await self._refuse(scope, send, "The X-Experience-API-Version header is required.")
                return
            if not VERSION_PATTERN.match(version.strip()):
                await self._refuse(scope, send, f"xAPI version {version[:20]!r} is not supported.")
                return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        statements_read = scope["method"] == "GET" and scope["path"] == STATEMENTS

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-experience-api-version", VERSION.encode()))
                if statements_read:
                    now = scope["app"].state.clock.now().astimezone(UTC).isoformat()
                    headers.append((b"x-experience-api-consistent-through", now.encode()))
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, stamped)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, detail: str) -> None:
        headers, body = _problem(scope, 400, detail)
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    @staticmethod
    async def _alternate(
        scope: Scope, receive: Receive, query: list[tuple[str, str]]
    ) -> tuple[Scope, Receive] | str:
        if scope["method"] != "POST":
            return "The Alternate Request Syntax is a POST."
        if len(query) != 1:
            return "With the Alternate Request Syntax, method is the only query parameter."
        method = query[0][1]
        if method not in ALTERNATE_METHODS:
            return f"method must be one of {', '.join(ALTERNATE_METHODS)}."
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return "The Alternate Request Syntax sends application/x-www-form-urlencoded."
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_FORM_BYTES:
                return "The form is too large."
            if not message.get("more_body", False):
                break
        try:
            form = parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return "The form is not UTF-8."
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"content-type", b"content-length", b"transfer-encoding")
        ]
        params: list[tuple[str, str]] = []
        body = b""
        given: dict[bytes, bytes] = {}
        for name, value in form:
            if name.lower() in FORM_HEADERS:
                given[name.lower().encode()] = value.encode("latin-1", "replace")
            elif name == "content":
                body = value.encode()
            else:
                params.append((name, value))
        given.pop(b"content-length", None)
        for header, header_value in given.items():
            headers = [(k, v) for k, v in headers if k != header]
            headers.append((header, header_value))
        if body and b"content-type" not in given:
            headers.append((b"content-type", b"application/json"))
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        new_scope = {
            **scope,
            "method": method,
            "headers": headers,
            "query_string": urlencode(params).encode(),
        }
        return new_scope, replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


# ----------------------------------------------------------------------------- callers


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


# ----------------------------------------------------------------------------- helpers


def _only(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and all of them known (names are case
    sensitive: `StatementId` is not `statementId`)."""
    seen: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise BadRequest(f"Unknown parameter {name[:40]!r}.")
        if name in seen:
            raise BadRequest(f"The parameter {name!r} is given twice.")
        seen[name] = value
    return seen


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


def _agent_param(value: str | None, name: str = "agent") -> str:
    if value is None:
        raise BadRequest(f"The {name} parameter is required.")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an Agent as JSON.") from exc
    rules.agent(parsed, name)
    key = canonical(agent_identifier(parsed, name))
    if key is None:
        raise BadRequest(f"{name} must be identified (mbox, mbox_sha1sum, openid, account).")
    return key


def _iri_param(value: str | None, name: str) -> str:
    if value is None:
        raise BadRequest(f"The {name} parameter is required.")
    return rules.iri(value, name)


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The body is not valid JSON.") from exc


async def _statement_body(request: Request) -> tuple[Any, service.Attachments]:
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    if media == "multipart/mixed":
        document, parts = content.parse_multipart(content_type, await request.body())
        return document, service.Attachments(parts)
    if media not in ("application/json", ""):
        raise BadRequest("Statements are sent as application/json or multipart/mixed.")
    return await _json_body(request), service.Attachments()


# ----------------------------------------------------------------------------- about


class About(BaseModel):
    version: list[str] = Field(examples=[VERSIONS])


@router.get(
    "/about",
    operation_id="get_xapi_about",
    summary="The xAPI versions this LRS speaks (no version header or credentials needed)",
    description="HEAD answers the same without a body.",
    response_model=About,
    responses={},
)
async def get_about() -> About:
    return About(version=VERSIONS)


# ----------------------------------------------------------------------------- statements

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
            },
            "multipart/mixed": {
                "schema": {"type": "string", "format": "binary"},
                "example": "--b\r\nContent-Type: application/json\r\n\r\n{...}\r\n--b\r\n"
                "Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
                "X-Experience-API-Hash: <sha256>\r\n\r\nhello\r\n--b--",
            },
        },
    }
}


@router.put(
    "/statements",
    operation_id="put_xapi_statement",
    summary="Store one statement under the given id (the same id again: same content only)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[require_scope(ApiScope.XAPI_WRITE)],
    responses=problem_responses(400, 409, 413, 415),
    openapi_extra={
        **STATEMENT_BODY,
        "parameters": [
            {"name": "statementId", "in": "query", "required": True, "schema": {"type": "string"}}
        ],
    },
)
async def put_statement(
    request: Request,
    principal: Principal = writer,
    session: AsyncSession = Depends(get_session),
) -> Response:
    params = _only(request, ("statementId",))
    if "statementId" not in params:
        raise BadRequest("PUT /statements needs the statementId parameter.")
    wanted = parse_uuid(params["statementId"], "statementId")
    body, attachments = await _statement_body(request)
    if not isinstance(body, dict):
        raise BadRequest("PUT /statements takes one statement (a JSON object).")
    if "id" in body and parse_uuid(body["id"], "id") != wanted:
        raise BadRequest("The statement's id differs from the statementId parameter.")
    body = {**body, "id": params["statementId"]} if "id" not in body else body
    await service.store_statements(
        session,
        org_of(principal),
        [body],
        authority=_authority(principal),
        now=clock_of(request).now(),
        attachments=attachments,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/statements",
    operation_id="post_xapi_statements",
    summary="Store one statement or a list of them (all or nothing); returns their ids",
    response_model=list[str],
    dependencies=[require_scope(ApiScope.XAPI_WRITE)],
    responses=problem_responses(400, 409, 413, 415),
    openapi_extra=STATEMENT_BODY,
)
async def post_statements(
    request: Request,
    principal: Principal = writer,
    session: AsyncSession = Depends(get_session),
) -> list[str]:
    _only(request, ())
    body, attachments = await _statement_body(request)
    statements = body if isinstance(body, list) else [body]
    ids = await service.store_statements(
        session,
        org_of(principal),
        statements,
        authority=_authority(principal),
        now=clock_of(request).now(),
        attachments=attachments,
    )
    return [str(statement_id) for statement_id in ids]


def _filters(params: dict[str, str]) -> service.StatementFilters:
    agent = _agent_param(params["agent"]) if "agent" in params else None
    for name in ("verb", "activity"):
        if name in params:
            rules.iri(params[name], name)
    since, until, registration = (
        params.get("since"),
        params.get("until"),
        params.get("registration"),
    )
    return service.StatementFilters(
        agent=agent,
        verb=params.get("verb"),
        activity=params.get("activity"),
        registration=parse_uuid(registration, "registration") if registration else None,
        since=parse_timestamp(since, "since") if since else None,
        until=parse_timestamp(until, "until") if until else None,
        ascending=_boolean(params.get("ascending"), "ascending"),
        related_agents=_boolean(params.get("related_agents"), "related_agents"),
        related_activities=_boolean(params.get("related_activities"), "related_activities"),
    )


def _more_link(request: Request, cursor: str | None) -> str:
    if cursor is None:
        return ""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return f"{STATEMENTS}?" + urlencode([*kept, ("cursor", cursor)])


def _formatted(statement: dict[str, Any], form: str, languages: list[str]) -> dict[str, Any]:
    if form == "ids":
        return content.ids_format(statement)
    if form == "canonical":
        return dict(content.canonical_format(statement, languages))
    return statement


@router.get(
    "/statements",
    operation_id="get_xapi_statements",
    summary="One statement (statementId, voidedStatementId) or the statements that match",
    description=(
        "Filters: `agent` (JSON), `verb`, `activity`, `registration`, `related_agents`, "
        "`related_activities`, `since`, `until` (stored time), `limit` (0: the most a page "
        "holds), `ascending`; `format` (`exact`, `ids`, `canonical` by Accept-Language) and "
        "`attachments=true` (a multipart/mixed answer with the attachments' contents). Voided "
        "statements are only returned through `voidedStatementId`; statements that point at a "
        "match with a StatementRef are returned with it. `more` is the path of the next page. "
        "HEAD answers the same without a body."
    ),
    dependencies=[require_scope(ApiScope.XAPI_READ)],
    responses={
        **problem_responses(400, 404),
        200: {
            "description": "A statement, or a StatementResult `{statements, more}`.",
            "content": {
                "application/json": {
                    "example": {"statements": [], "more": ""},
                },
                "multipart/mixed": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in (*SINGLE, *QUERY)
        ]
    },
)
async def get_statements(
    request: Request,
    principal: Principal = reader,
    session: AsyncSession = Depends(get_session),
) -> Response:
    params = _only(request, (*SINGLE, *QUERY))
    org_id = org_of(principal)
    form = params.get("format", "exact")
    if form not in FORMATS:
        raise BadRequest("format must be ids, exact or canonical.")
    with_attachments = _boolean(params.get("attachments"), "attachments")
    languages = content.accepted_languages(request.headers.get("accept-language"))
    single = [name for name in SINGLE if name in params]
    if single:
        others = [name for name in params if name not in (*SINGLE, "format", "attachments")]
        if len(single) > 1 or others:
            raise BadRequest(f"{single[0]} cannot be combined with {(single[1:] + others)[0]}.")
        name = single[0]
        found = await service.get_statement(
            session, org_id, parse_uuid(params[name], name), voided=name == "voidedStatementId"
        )
        headers = {"Last-Modified": _http_date(datetime.fromisoformat(found["stored"]))}
        document: Any = _formatted(found, form, languages)
        statements = [found]
    else:
        settings: Settings = request.app.state.settings
        page, cursor, newest = await service.query_statements(
            session,
            org_id,
            _filters(params),
            limit=_limit(params.get("limit"), settings.xapi_max_limit),
            cursor=params.get("cursor"),
        )
        headers = {"Last-Modified": _http_date(newest or clock_of(request).now())}
        document = {
            "statements": [_formatted(s, form, languages) for s in page],
            "more": _more_link(request, cursor),
        }
        statements = page
    if with_attachments:
        parts = await service.attachment_parts(session, org_id, statements)
        media_type, body = content.build_multipart(document, parts)
        return Response(body, media_type=media_type, headers=headers)
    return JSONResponse(document, headers=headers)


# ----------------------------------------------------------------------------- documents

DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}, "example": {"bookmark": "page-4"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _document_parameters(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in names
        ]
    }


STATE_PARAMS = ("activityId", "agent", "registration", "stateId")
ACTIVITY_PROFILE_PARAMS = ("activityId", "profileId")
AGENT_PROFILE_PARAMS = ("agent", "profileId")


def _state_scope(params: dict[str, str]) -> documents.Scope:
    registration = params.get("registration")
    return documents.Scope(
        documents.STATE,
        activity_id=_iri_param(params.get("activityId"), "activityId"),
        agent=_agent_param(params.get("agent")),
        registration=str(parse_uuid(registration, "registration")) if registration else None,
    )


def _activity_profile_scope(params: dict[str, str]) -> documents.Scope:
    return documents.Scope(
        documents.ACTIVITY_PROFILE, activity_id=_iri_param(params.get("activityId"), "activityId")
    )


def _agent_profile_scope(params: dict[str, str]) -> documents.Scope:
    return documents.Scope(documents.AGENT_PROFILE, agent=_agent_param(params.get("agent")))


RESOURCES = {
    "state": ("/activities/state", "stateId", STATE_PARAMS, _state_scope, False),
    "activity_profile": (
        "/activities/profile",
        "profileId",
        ACTIVITY_PROFILE_PARAMS,
        _activity_profile_scope,
        True,
    ),
    "agent_profile": (
        "/agents/profile",
        "profileId",
        AGENT_PROFILE_PARAMS,
        _agent_profile_scope,
        True,
    ),
}


def _document_id(params: dict[str, str], name: str, required: bool) -> str | None:
    value = params.get(name)
    if value is None and required:
        raise BadRequest(f"The {name} parameter is required.")
    return value


def _register_documents(kind: str) -> None:
    path, id_name, names, make_scope, concurrency = RESOURCES[kind]
    label = kind.replace("_", " ")

    async def get_documents(
        request: Request,
        principal: Principal = reader,
        session: AsyncSession = Depends(get_session),
    ) -> Response:
        params = _only(request, (*names, "since"))
        scope = make_scope(params)
        document_id = _document_id(params, id_name, False)
        org_id = org_of(principal)
        if document_id is None:
            since = parse_timestamp(params["since"], "since") if "since" in params else None
            ids, newest = await documents.list_ids(session, org_id, scope, since)
            headers = {"Last-Modified": _http_date(newest or clock_of(request).now())}
            return JSONResponse(ids, headers=headers)
        row = await documents.read(session, org_id, scope, document_id)
        return Response(
            row.content,
            media_type=row.content_type,
            headers={"ETag": f'"{row.etag}"', "Last-Modified": _http_date(row.stored)},
        )

    async def write_document(
        request: Request, principal: Principal, session: AsyncSession, *, merge: bool
    ) -> Response:
        params = _only(request, names)
        scope = make_scope(params)
        document_id = _document_id(params, id_name, True)
        assert document_id is not None
        row = await documents.write(
            session,
            org_of(principal),
            scope,
            document_id,
            content=await request.body(),
            content_type=request.headers.get("content-type", "application/octet-stream"),
            merge=merge,
            if_match=request.headers.get("if-match"),
            if_none_match=request.headers.get("if-none-match"),
            concurrency_required=concurrency,
            now=clock_of(request).now(),
        )
        return Response(status_code=204, headers={"ETag": f'"{row.etag}"'})

    async def put_document(
        request: Request,
        principal: Principal = writer,
        session: AsyncSession = Depends(get_session),
    ) -> Response:
        return await write_document(request, principal, session, merge=False)

    async def post_document(
        request: Request,
        principal: Principal = writer,
        session: AsyncSession = Depends(get_session),
    ) -> Response:
        return await write_document(request, principal, session, merge=True)

    async def delete_documents(
        request: Request,
        principal: Principal = writer,
        session: AsyncSession = Depends(get_session),
    ) -> Response:
        params = _only(request, names)
        scope = make_scope(params)
        document_id = _document_id(params, id_name, kind != "state")
        await documents.remove(
            session,
            org_of(principal),
            scope,
            document_id,
            if_match=request.headers.get("if-match"),
            if_none_match=request.headers.get("if-none-match"),
        )
        return Response(status_code=204)

    read = [require_scope(ApiScope.XAPI_READ)]
    write = [require_scope(ApiScope.XAPI_WRITE)]
    router.add_api_route(
        path,
        get_documents,
        methods=["GET"],
        operation_id=f"get_xapi_{kind}",
        summary=f"One {label} document (with {id_name}), or the ids of the {label} documents",
        description="`since` (ids only): stored after it. The document comes with its ETag "
        "and Last-Modified. HEAD answers the same without a body.",
        dependencies=read,
        responses={
            **problem_responses(400, 404),
            200: {"content": {"application/json": {"example": ["bookmark", "progress"]}}},
        },
        openapi_extra=_document_parameters((*names, "since")),
        response_class=Response,
    )
    router.add_api_route(
        path,
        put_document,
        methods=["PUT"],
        status_code=204,
        operation_id=f"put_xapi_{kind}",
        summary=f"Store a {label} document (replacing it)"
        + (": If-Match or If-None-Match required when it exists" if concurrency else ""),
        dependencies=write,
        responses=problem_responses(400, 409, 412, 413, 415),
        openapi_extra={**DOCUMENT_BODY, **_document_parameters(names)},
        response_class=Response,
    )
    router.add_api_route(
        path,
        post_document,
        methods=["POST"],
        status_code=204,
        operation_id=f"post_xapi_{kind}",
        summary=f"Merge a JSON object into a {label} document (top-level properties)",
        dependencies=write,
        responses=problem_responses(400, 412, 413, 415),
        openapi_extra={**DOCUMENT_BODY, **_document_parameters(names)},
        response_class=Response,
    )
    router.add_api_route(
        path,
        delete_documents,
        methods=["DELETE"],
        status_code=204,
        operation_id=f"delete_xapi_{kind}",
        summary=f"Delete a {label} document"
        + (
            " (or, without stateId, every one of the activity and agent)" if kind == "state" else ""
        ),
        dependencies=write,
        responses=problem_responses(400, 412),
        openapi_extra=_document_parameters(names),
        response_class=Response,
    )


for _kind in RESOURCES:
    _register_documents(_kind)


# ----------------------------------------------------------------------------- agents, activities


class Person(BaseModel):
    objectType: str = Field("Person", examples=["Person"])
    name: list[str] = Field(default_factory=list)
    mbox: list[str] = Field(default_factory=list, examples=[["mailto:dana@demo.example"]])
    mbox_sha1sum: list[str] = Field(default_factory=list)
    openid: list[str] = Field(default_factory=list)
    account: list[dict[str, str]] = Field(default_factory=list)


@router.get(
    "/agents",
    operation_id="get_xapi_agents",
    summary="The Person object the LRS knows for an Agent (its identifiers and names)",
    description="HEAD answers the same without a body.",
    response_model=Person,
    dependencies=[require_scope(ApiScope.XAPI_READ)],
    responses=problem_responses(400),
    openapi_extra=_document_parameters(("agent",)),
)
async def get_agents(request: Request, principal: Principal = reader) -> Person:
    params = _only(request, ("agent",))
    _agent_param(params.get("agent"))
    agent = json.loads(params["agent"])
    person = Person()
    if isinstance(agent.get("name"), str):
        person.name.append(agent["name"])
    for key in ("mbox", "mbox_sha1sum", "openid"):
        if key in agent:
            getattr(person, key).append(agent[key])
    if "account" in agent:
        person.account.append(agent["account"])
    return person


@router.get(
    "/activities",
    operation_id="get_xapi_activity",
    summary="An activity with the definition the statements gave it",
    description="HEAD answers the same without a body.",
    dependencies=[require_scope(ApiScope.XAPI_READ)],
    responses={
        **problem_responses(400, 404),
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "objectType": "Activity",
                        "id": "https://lms.example.org/xapi/activities/bystander-101",
                        "definition": {"name": {"en-US": "Bystander training"}},
                    }
                }
            }
        },
    },
    openapi_extra=_document_parameters(("activityId",)),
)
async def get_activity(
    request: Request,
    principal: Principal = reader,
    session: AsyncSession = Depends(get_session),
) -> JSONResponse:
    params = _only(request, ("activityId",))
    activity_id = _iri_param(params.get("activityId"), "activityId")
    return JSONResponse(await service.get_activity(session, org_of(principal), activity_id))
