"""Routes: `POST /auth/token` (OAuth 2.0 password, client_credentials, refresh_token) and
`GET /.well-known/jwks.json`."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Form, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.keys import KeyStore
from upstander.gateway.auth.tokens import (
    IssuedToken,
    OAuthError,
    TokenIssuer,
    client_credentials_grant,
    password_grant,
    refresh_token_grant,
)
from upstander.gateway.edge.ratelimit import anonymise
from upstander.kit.app import make_router
from upstander.kit.db import get_session
from upstander.kit.errors import RateLimited, problem_responses

router = make_router(tags=["auth"])


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
    scope: str = Field(default="", examples=["cases:read training:write"])


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


def _required(value: str | None, name: str) -> str:
    if not value:
        raise OAuthError("invalid_request", f"The '{name}' parameter is required.")
    return value


def _limit_account(
    request: Request, grant_type: str, username: str | None, client_id: str | None
) -> None:
    """Per-account limit on top of the per-source one: guessing one person's password from
    many addresses is slowed down too. Keys are keyed hashes; no name is kept."""
    if grant_type == "password" and username:
        key = "user:" + anonymise(username.strip().lower())
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        identifier = basic[0] if basic else client_id
        if not identifier:
            return
        key = "client:" + anonymise(identifier)
    else:
        return
    retry_after = request.app.state.auth_account_limiter.hit(key)
    if retry_after:
        raise RateLimited(retry_after, "Too many sign-in attempts for this account.")


@router.post(
    "/auth/token",
    operation_id="create_token",
    summary="Exchange credentials for an access token (OAuth 2.0)",
    description=(
        "Form-encoded (`application/x-www-form-urlencoded`). Grants: `password` "
        "(`username` = email, `password`, optional `org` slug when the email is in several "
        "organisations), `client_credentials` (`client_id` and `client_secret` as form fields "
        "or HTTP Basic), `refresh_token` (rotating: the old refresh token stops working). "
        "Errors are problem+json with an RFC 6749 `error` code."
    ),
    response_model=TokenResponse,
    responses=problem_responses(400, 401, 422),
)
async def create_token(
    request: Request,
    response: Response,
    grant_type: Annotated[str, Form(max_length=64, examples=["password"])],
    username: Annotated[str | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    org: Annotated[str | None, Form(max_length=64, description="Organisation slug.")] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[str | None, Form(max_length=1024)] = None,
    session: AsyncSession = Depends(get_session),
    issuer: TokenIssuer = Depends(get_token_issuer),
) -> TokenResponse:
    issued: IssuedToken
    _limit_account(request, grant_type, username, client_id)
    if grant_type == "password":
        issued = await password_grant(
            session,
            issuer,
            username=_required(username, "username"),
            password=_required(password, "password"),
            org_slug=org,
        )
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        if basic is not None:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise OAuthError("invalid_client", "Client credentials are required.", status=401)
        issued = await client_credentials_grant(
            session, issuer, client_id=client_id, client_secret=client_secret, scope=scope
        )
    elif grant_type == "refresh_token":
        issued = await refresh_token_grant(
            session, issuer, refresh_token=_required(refresh_token, "refresh_token")
        )
    else:
        raise OAuthError(
            "unsupported_grant_type",
            "Supported grants: password, client_credentials, refresh_token.",
        )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenResponse(
        access_token=issued.access_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=issued.scope,
    )


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
