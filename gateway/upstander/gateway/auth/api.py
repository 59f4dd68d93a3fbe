"""Routes of the authorization server: `POST /auth/token` (OAuth 2.0 password,
client_credentials, refresh_token), `POST /auth/revoke` (RFC 7009), `POST /auth/introspect`
(RFC 7662), `POST /auth/logout`, and the documents that describe them: `GET
/.well-known/oauth-authorization-server` (RFC 8414), `/.well-known/openid-configuration` and
`/.well-known/jwks.json`.

Every failure of the four POST endpoints is an RFC 6749 §5.2 error (`oauth.OAuthRoute`)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import HTTPBasic
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.authorize import (
    authorization_code_grant,
    code_client,
    password_org,
)
from upstander.gateway.auth.keys import KeyStore
from upstander.gateway.auth.oauth import (
    INTROSPECTION_PATH,
    LOGOUT_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    OAuthError,
    OAuthRoute,
    openid_configuration,
    require_form,
    server_metadata,
)
from upstander.gateway.auth.sessions import RevokedTokens, introspect, logout, revoke
from upstander.gateway.auth.tokens import (
    IssuedToken,
    TokenIssuer,
    authenticate_client,
    client_credentials_grant,
    password_grant,
    refresh_token_grant,
)
from upstander.gateway.edge.limitstore import WindowLimit
from upstander.gateway.models import ApiClient
from upstander.kit.app import make_router
from upstander.kit.auth import TokenVerifier, bearer_token
from upstander.kit.db import get_session
from upstander.kit.errors import PROBLEM_JSON, RateLimited, problem_responses

router = make_router(tags=["auth"])
# The OAuth endpoints: every failure in the RFC 6749 shape.
oauth_router = APIRouter(tags=["auth"], route_class=OAuthRoute)

FORM = "application/x-www-form-urlencoded"
# Documents client authentication by HTTP Basic (RFC 6749 §2.3.1); the routes read it.
CLIENT_BASIC = HTTPBasic(
    scheme_name="ClientSecretBasic",
    description="An API client's `client_id` and `client_secret` (or send them as form fields).",
    auto_error=False,
)
# Operations a client may (`{}`: or may not) authenticate to.
OPTIONAL_CLIENT: dict[str, Any] = {"security": [{}, {"ClientSecretBasic": []}]}


class TokenResponse(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJFZERTQSIsImtpZCI6IjIwMjYwMTAxLWFiY2QifQ..."])
    token_type: str = Field(default="Bearer", examples=["Bearer"])
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])
    refresh_token: str | None = Field(
        default=None,
        description="Only for people (password and refresh_token grants). Single use: "
        "each refresh returns a new one.",
        examples=["kq3o1XvZ6w7Tn8Yc0dTa0l2nN9sQk5bq1pY0r4m2c7E"],
    )
    scope: str = Field(
        default="",
        description="What the token allows, space-separated: a client's granted scopes (or "
        "those requested), a person's roles' scopes (or those requested).",
        examples=["cases:read training:write"],
    )


class OAuthErrorBody(BaseModel):
    """An RFC 6749 §5.2 error, which is also an RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(examples=["invalid_grant"])
    error_description: str = Field(examples=["The refresh token is not valid."])
    type: str = Field(examples=["https://upstander.dev/problems/oauth-invalid-grant"])
    title: str = Field(examples=["Invalid grant"])
    status: int = Field(examples=[400])
    detail: str = Field(examples=["The refresh token is not valid."])
    instance: str | None = Field(default=None, examples=["/auth/token"])
    request_id: str | None = None


class IntrospectionResponse(BaseModel):
    """RFC 7662 §2.2. An inactive token is `{"active": false}` and nothing else."""

    active: bool = Field(examples=[True])
    token_type: str | None = Field(default=None, examples=["Bearer"])
    scope: str | None = Field(default=None, examples=["people:read people:write"])
    client_id: str | None = Field(default=None, examples=["cl_5Yk2m9QeT0x1"])
    sub: str | None = Field(default=None, examples=["cl_5Yk2m9QeT0x1"])
    aud: str | None = Field(default=None, examples=["upstander"])
    iss: str | None = Field(default=None, examples=["upstander"])
    exp: int | None = Field(default=None, examples=[1767225600])
    iat: int | None = Field(default=None, examples=[1767222000])
    jti: str | None = Field(default=None, examples=["5f0c1e2d3b4a59687766554433221100"])
    typ: str | None = Field(
        default=None, description="staff, client, reporter or service.", examples=["client"]
    )
    org: str | None = Field(default=None, examples=["0d6b6f43-2c0e-4b8f-8f0e-2a3c6bb1a9a1"])
    roles: list[str] | None = Field(default=None, examples=[[]])
    report: str | None = None


class ServerMetadata(BaseModel):
    """RFC 8414 authorization-server metadata (and OpenID Connect Discovery's members)."""

    model_config = ConfigDict(extra="allow")

    issuer: str = Field(examples=["https://api.upstander.example"])
    authorization_endpoint: str | None = Field(
        default=None, examples=["https://api.upstander.example/auth/authorize"]
    )
    token_endpoint: str = Field(examples=["https://api.upstander.example/auth/token"])
    jwks_uri: str = Field(examples=["https://api.upstander.example/.well-known/jwks.json"])
    revocation_endpoint: str
    introspection_endpoint: str
    grant_types_supported: list[str] = Field(
        examples=[["authorization_code", "password", "client_credentials", "refresh_token"]]
    )
    response_types_supported: list[str] = Field(examples=[["code"]])
    response_modes_supported: list[str] | None = Field(default=None, examples=[["query"]])
    code_challenge_methods_supported: list[str] | None = Field(default=None, examples=[["S256"]])
    authorization_response_iss_parameter_supported: bool | None = None
    token_endpoint_auth_methods_supported: list[str] = Field(
        examples=[["client_secret_basic", "client_secret_post"]]
    )
    revocation_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str] = Field(examples=[["cases:read", "people:write"]])
    service_documentation: str | None = None
    subject_types_supported: list[str] | None = None
    claims_supported: list[str] | None = None


class Jwk(BaseModel):
    kty: str = Field(examples=["OKP"])
    crv: str = Field(examples=["Ed25519"])
    x: str = Field(examples=["11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"])
    kid: str = Field(examples=["20260101-1a2b3c4d"])
    use: str = Field(examples=["sig"])
    alg: str = Field(examples=["EdDSA"])


class Jwks(BaseModel):
    keys: list[Jwk]


def get_token_issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.token_issuer
    return issuer


def get_token_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


def _oauth_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for an OAuth endpoint: each status an RFC 6749 error (problem+json, or
    application/json when asked for)."""
    descriptions = {
        400: "invalid_request, invalid_grant, invalid_scope, unsupported_grant_type, "
        "unauthorized_client",
        401: "invalid_client (with a `WWW-Authenticate: Basic` challenge)",
        413: "invalid_request: the body is too large",
        415: "invalid_request: not a form",
        429: "slow_down (with `Retry-After`)",
        503: "temporarily_unavailable",
    }
    schema = {"$ref": "#/components/schemas/OAuthErrorBody"}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": OAuthErrorBody,
            "description": descriptions[status],
            "content": {PROBLEM_JSON: {"schema": schema}, "application/json": {"schema": schema}},
        }
        if status in (429, 503):
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer"},
                }
            }
        responses[status] = response
    return responses


async def _single_parameters(request: Request) -> None:
    """RFC 6749 §3.2: the body is a form (a JSON body is `invalid_request`), and no parameter
    is sent twice."""
    require_form(request)
    form = await request.form()
    repeated = sorted({key for key in form if len(form.getlist(key)) > 1})
    if repeated:
        raise OAuthError(
            "invalid_request", f"Parameters sent more than once: {', '.join(repeated)[:200]}."
        )


FormOnly = Depends(_single_parameters)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(client_id), unquote(secret)


def _client_credentials(
    request: Request, client_id: str | None, client_secret: str | None
) -> tuple[str, str] | None:
    """The client's credentials, from HTTP Basic or the form (RFC 6749 §2.3.1: one method,
    not both); None when it sent none."""
    basic = _basic_credentials(request)
    if basic is not None:
        if client_secret:
            raise OAuthError(
                "invalid_request", "Authenticate the client one way: HTTP Basic or the form."
            )
        return basic
    if client_id and client_secret:
        return client_id, client_secret
    if client_secret:
        raise OAuthError("invalid_client", "client_id is required.", status=401)
    return None


def _required(value: str | None, name: str) -> str:
    if not value:
        raise OAuthError("invalid_request", f"The '{name}' parameter is required.")
    return value


async def _limit_account(
    request: Request, grant_type: str, username: str | None, client_id: str | None
) -> None:
    """Per-account limit on top of the per-source one: guessing one person's password from
    many addresses is slowed down too (across every replica with a shared store). Keys are
    keyed hashes; no name is kept."""
    limits: WindowLimit = request.app.state.auth_account_limits
    if grant_type == "password" and username:
        key = "user:" + limits.key(username.strip().lower())
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        identifier = basic[0] if basic else client_id
        if not identifier:
            return
        key = "client:" + limits.key(identifier)
    else:
        return
    retry_after = await limits.hit(key)
    if retry_after:
        raise RateLimited(retry_after, "Too many sign-in attempts for this account.")


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@oauth_router.post(
    TOKEN_PATH,
    operation_id="create_token",
    summary="Exchange credentials for an access token (OAuth 2.0)",
    description=(
        "Form-encoded (`application/x-www-form-urlencoded`). Grants: `authorization_code` "
        "(`code`, `redirect_uri`, `code_verifier` and `client_id`: the end of the browser "
        "sign-in that `GET /auth/authorize` starts; a public client sends no secret), "
        "`password` (`username` = email, `password`, optional `org` slug when the email is in "
        "several organisations; a `client_id` must allow the password grant, and without one "
        "it is for first-party tools only), `client_credentials` (`client_id` and "
        "`client_secret` as form fields or HTTP Basic), `refresh_token` (rotating: the old "
        "refresh token stops working). "
        "`scope` (space-separated) narrows the token to some of the scopes the client was "
        "granted or the person's roles hold; an unknown or ungranted one is `invalid_scope`.\n\n"
        "Errors are RFC 6749 §5.2 objects (`error`, `error_description`) that are also RFC "
        "9457 problems (`type`, `title`, `status`, `detail`): 400 `invalid_request` (a "
        "missing or repeated parameter, a JSON body), `invalid_grant`, `invalid_scope`, "
        "`unsupported_grant_type`; 401 `invalid_client`; 429 `slow_down` with `Retry-After`."
    ),
    response_model=TokenResponse,
    responses=_oauth_errors(400, 401, 413, 415, 429, 503),
    dependencies=[FormOnly],
    openapi_extra=OPTIONAL_CLIENT,
)
async def create_token(
    request: Request,
    response: Response,
    grant_type: Annotated[str, Form(max_length=64, examples=["client_credentials"])],
    username: Annotated[str | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    org: Annotated[str | None, Form(max_length=64, description="Organisation slug.")] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[
        str | None,
        Form(max_length=1024, description="Space-separated scopes.", examples=["people:write"]),
    ] = None,
    code: Annotated[
        str | None, Form(max_length=256, description="authorization_code: the code.")
    ] = None,
    redirect_uri: Annotated[
        str | None,
        Form(max_length=2000, description="authorization_code: as in the authorization request."),
    ] = None,
    code_verifier: Annotated[
        str | None, Form(max_length=128, description="authorization_code: the PKCE verifier.")
    ] = None,
    session: AsyncSession = Depends(get_session),
    issuer: TokenIssuer = Depends(get_token_issuer),
) -> TokenResponse:
    issued: IssuedToken
    await _limit_account(request, grant_type, username, client_id)
    if grant_type == "password":
        org = await password_org(
            session,
            request.app.state.settings,
            _client_credentials(request, client_id, client_secret),
            client_id,
            org,
        )
        issued = await password_grant(
            session,
            issuer,
            username=_required(username, "username"),
            password=_required(password, "password"),
            org_slug=org,
            scope=scope,
        )
    elif grant_type == "authorization_code":
        client = await code_client(
            session, _client_credentials(request, client_id, client_secret), client_id
        )
        issued = await authorization_code_grant(
            session,
            issuer,
            client,
            code=_required(code, "code"),
            redirect_uri=_required(redirect_uri, "redirect_uri"),
            code_verifier=_required(code_verifier, "code_verifier"),
        )
    elif grant_type == "client_credentials":
        credentials = _client_credentials(request, client_id, client_secret)
        if credentials is None:
            raise OAuthError("invalid_client", "Client credentials are required.", status=401)
        issued = await client_credentials_grant(
            session, issuer, client_id=credentials[0], client_secret=credentials[1], scope=scope
        )
    elif grant_type == "refresh_token":
        issued = await refresh_token_grant(
            session, issuer, refresh_token=_required(refresh_token, "refresh_token"), scope=scope
        )
    else:
        raise OAuthError(
            "unsupported_grant_type",
            "Supported grants: authorization_code, password, client_credentials, refresh_token.",
        )
    _no_store(response)
    return TokenResponse(
        access_token=issued.access_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=issued.scope,
    )


TokenHint = Annotated[
    str | None,
    Form(
        max_length=64,
        description="`access_token` or `refresh_token`: where to look first (others are "
        "ignored; both kinds are always tried).",
        examples=["refresh_token"],
    ),
]
# Long enough for any token the gateway issues; anything longer is no token of ours.
TokenParam = Annotated[str, Form(max_length=8192, description="The token.")]


@oauth_router.post(
    REVOCATION_PATH,
    operation_id="revoke_token",
    summary="Revoke a token (RFC 7009)",
    description=(
        "Form-encoded `token` and optional `token_type_hint`. A refresh token ends its whole "
        "sign-in (every refresh token rotated from it, and the access tokens it issued); an "
        "access token is refused from then on until it expires, by the gateway on every "
        "route. Holding the token is enough; a client that authenticates (HTTP Basic or form) "
        "may only revoke its own client tokens. The answer is 200 with no body whether or not "
        "the token was valid (RFC 7009 §2.2)."
    ),
    response_class=Response,
    responses={
        200: {"description": "Revoked, or nothing to revoke."},
        **_oauth_errors(400, 401, 429),
    },
    dependencies=[FormOnly],
    openapi_extra=OPTIONAL_CLIENT,
)
async def revoke_token(
    request: Request,
    token: TokenParam,
    token_type_hint: TokenHint = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=1024)] = None,
    session: AsyncSession = Depends(get_session),
    verifier: TokenVerifier = Depends(get_token_verifier),
) -> Response:
    client: ApiClient | None = None
    credentials = _client_credentials(request, client_id, client_secret)
    if credentials is not None:
        client = await authenticate_client(
            session, client_id=credentials[0], client_secret=credentials[1]
        )
    revoked = await revoke(
        session,
        verifier,
        request.app.state.clock,
        token=token,
        hint=token_type_hint,
        client=client,
    )
    _forget_after_commit(request, revoked.keys)
    response = Response(status_code=200)
    _no_store(response)
    return response


@oauth_router.post(
    INTROSPECTION_PATH,
    operation_id="introspect_token",
    summary="Is this token active, and what does it allow? (RFC 7662)",
    description=(
        "For resource servers that cannot verify JWTs themselves (those that can: use "
        "`/.well-known/jwks.json`). The caller authenticates as an API client (HTTP Basic or "
        "form). An organisation's client learns about its own organisation's tokens only; a "
        'token of another organisation, revoked, expired or unknown is `{"active": false}`. '
        "The answer holds ids, roles and scopes, never a name or an email."
    ),
    response_model=IntrospectionResponse,
    response_model_exclude_none=True,
    responses=_oauth_errors(400, 401, 429),
    dependencies=[FormOnly, Depends(CLIENT_BASIC)],
)
async def introspect_token(
    request: Request,
    response: Response,
    token: TokenParam,
    token_type_hint: TokenHint = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=1024)] = None,
    session: AsyncSession = Depends(get_session),
    verifier: TokenVerifier = Depends(get_token_verifier),
) -> IntrospectionResponse:
    credentials = _client_credentials(request, client_id, client_secret)
    if credentials is None:
        raise OAuthError("invalid_client", "Client authentication is required.", status=401)
    client = await authenticate_client(
        session, client_id=credentials[0], client_secret=credentials[1]
    )
    revoked: RevokedTokens = request.app.state.revoked_tokens
    answer = await introspect(
        session, verifier, revoked, token=token, hint=token_type_hint, client=client
    )
    _no_store(response)
    return IntrospectionResponse.model_validate(answer)


@oauth_router.post(
    LOGOUT_PATH,
    operation_id="logout",
    summary="Sign out: end the sign-in and its tokens",
    description=(
        "Send the access token as `Authorization: Bearer` and/or the `refresh_token` in the "
        "form. The sign-in ends: its refresh tokens stop working and every access token it "
        "issued is refused from now on. Unknown or expired tokens change nothing; logging out "
        "twice is fine (204 each time)."
    ),
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Signed out."}, **_oauth_errors(400, 429)},
    dependencies=[FormOnly],
    openapi_extra={"security": [{}, {"BearerJWT": []}]},
)
async def logout_session(
    request: Request,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
    session: AsyncSession = Depends(get_session),
    verifier: TokenVerifier = Depends(get_token_verifier),
) -> Response:
    access_token = bearer_token(request)
    if not access_token and not refresh_token:
        raise OAuthError(
            "invalid_request", "Send the access token (Bearer) or the refresh_token to end."
        )
    revoked = await logout(
        session,
        verifier,
        request.app.state.clock,
        access_token=access_token,
        refresh_token=refresh_token,
    )
    _forget_after_commit(request, revoked.keys)
    response = Response(status_code=204)
    _no_store(response)
    return response


def _forget_after_commit(request: Request, keys: tuple[str, ...]) -> None:
    """Once the revocation is committed, this process refuses the tokens at once (other
    replicas within `access_cache_seconds`)."""
    revoked: RevokedTokens | None = getattr(request.app.state, "revoked_tokens", None)
    if revoked is None or not keys:
        return
    callbacks = getattr(request.state, "after_commit", None)
    if callbacks is None:
        callbacks = request.state.after_commit = []
    callbacks.extend(lambda key=key: revoked.remember(key, True) for key in keys)


def _issuer(request: Request) -> str:
    issuer: str = request.app.state.settings.jwt_issuer
    return issuer


@router.get(
    "/.well-known/oauth-authorization-server",
    operation_id="get_authorization_server_metadata",
    summary="Authorization-server metadata (RFC 8414)",
    description=(
        "Where the token, revocation and introspection endpoints and the signing keys are, "
        "which grants, client authentication methods and scopes are supported. `issuer` is "
        "what tokens carry as `iss`."
    ),
    response_model=ServerMetadata,
    response_model_exclude_none=True,
    responses=problem_responses(),
)
async def get_authorization_server_metadata(request: Request, response: Response) -> ServerMetadata:
    response.headers["Cache-Control"] = "public, max-age=3600"
    return ServerMetadata.model_validate(server_metadata(request, _issuer(request)))


@router.get(
    "/.well-known/openid-configuration",
    operation_id="get_openid_configuration",
    summary="OpenID Connect discovery document",
    description=(
        "The same facts as the RFC 8414 document, for OpenID Connect libraries. Upstander "
        "issues access tokens, not ID tokens (yet): the members that only ID tokens and a "
        "browser flow would make true are absent."
    ),
    response_model=ServerMetadata,
    response_model_exclude_none=True,
    responses=problem_responses(),
)
async def get_openid_configuration(request: Request, response: Response) -> ServerMetadata:
    response.headers["Cache-Control"] = "public, max-age=3600"
    return ServerMetadata.model_validate(openid_configuration(request, _issuer(request)))


@router.get(
    "/.well-known/jwks.json",
    operation_id="get_jwks",
    summary="The public keys that verify Upstander tokens",
    response_model=Jwks,
    responses=problem_responses(),
)
async def get_jwks(request: Request, response: Response) -> Jwks:
    keys: KeyStore = request.app.state.key_store
    response.headers["Cache-Control"] = "public, max-age=300"
    return Jwks.model_validate(keys.jwks())
