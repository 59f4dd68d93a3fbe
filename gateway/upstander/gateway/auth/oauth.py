"""OAuth 2.0 at the standard's word: the RFC 6749 §5.2 error shape of the token, revocation,
introspection and logout endpoints, the route class that answers every failure there in that
shape, and the discovery documents (RFC 8414, OpenID Connect Discovery).

Errors: one JSON object that standard OAuth clients and problem+json readers both read:
`error` and `error_description` (RFC 6749) next to `type`, `title`, `status` and `detail`
(RFC 9457). Its Content-Type is `application/problem+json`, the platform's one error format,
unless the caller's `Accept` asks for `application/json` and not problem+json (as Authlib and
most OAuth libraries send), which then gets `application/json`. Statuses: 400 for
`invalid_request`, `invalid_grant`, `invalid_scope`, `unsupported_grant_type`,
`unauthorized_client`; 401 `invalid_client` with a `WWW-Authenticate: Basic` challenge; 429
`slow_down` with `Retry-After`; 503 `temporarily_unavailable`. See docs/auth.md.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from upstander.kit.db import CommittingRoute
from upstander.kit.errors import PROBLEM_BASE, PROBLEM_JSON, ProblemError, RateLimited
from upstander.kit.scopes import CATALOGUE

TOKEN_PATH = "/auth/token"
REVOCATION_PATH = "/auth/revoke"
INTROSPECTION_PATH = "/auth/introspect"
LOGOUT_PATH = "/auth/logout"
JWKS_PATH = "/.well-known/jwks.json"
FORM = "application/x-www-form-urlencoded"

# RFC 6749 §5.2 codes (and RFC 8628's `slow_down`, RFC 7009's `unsupported_token_type`).
_TITLES = {
    "invalid_request": "Invalid request",
    "invalid_client": "Invalid client",
    "invalid_grant": "Invalid grant",
    "invalid_scope": "Invalid scope",
    "unauthorized_client": "Unauthorized client",
    "unsupported_grant_type": "Unsupported grant type",
    "unsupported_token_type": "Unsupported token type",
    "slow_down": "Too many requests",
    "temporarily_unavailable": "Temporarily unavailable",
    "server_error": "Server error",
}


class OAuthError(ProblemError):
    """An error of an OAuth endpoint: RFC 6749 `error` and `error_description`, as problem+json
    members too. 401 `invalid_client` carries a Basic challenge (RFC 6749 §5.2)."""

    def __init__(
        self,
        error: str,
        detail: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        challenge = (
            {"WWW-Authenticate": f'Basic realm="upstander", error="{error}"'}
            if status == 401
            else {}
        )
        super().__init__(
            detail,
            headers={
                "Cache-Control": "no-store",
                "Pragma": "no-cache",
                **challenge,
                **(headers or {}),
            },
            error=error,
            error_description=detail,
        )
        self.error = error
        self.status = status
        # A rate limit is `rate-limited` wherever it happens (the per-source limit, in front
        # of the routes, says so too); the others are `oauth-<error>`.
        self.slug = "rate-limited" if error == "slow_down" else "oauth-" + error.replace("_", "-")
        self.title = _TITLES.get(error, "Invalid request")


def _media_type(request: Request) -> str:
    accept = request.headers.get("accept", "").lower()
    if "application/json" in accept and PROBLEM_JSON not in accept:
        return "application/json"
    return PROBLEM_JSON


def oauth_error_response(request: Request, error: OAuthError) -> JSONResponse:
    body: dict[str, Any] = {
        "error": error.error,
        "error_description": error.detail,
        "type": PROBLEM_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    for name, value in error.extra.items():
        body.setdefault(name, value)
    return JSONResponse(
        body, status_code=error.status, media_type=_media_type(request), headers=error.headers
    )


def _validation_description(error: RequestValidationError) -> str:
    names = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        if item.get("type") == "missing" and location:
            return f"The '{location[-1]}' parameter is required."
        if location:
            names.append(location[-1])
    if names:
        return "Malformed parameters: " + ", ".join(dict.fromkeys(names)) + "."
    return "The request is malformed."


def as_oauth_error(exc: Exception) -> OAuthError | None:
    """The OAuth error an exception raised inside an OAuth endpoint amounts to (None: a bug,
    left to the platform's 500)."""
    if isinstance(exc, OAuthError):
        return exc
    if isinstance(exc, RequestValidationError):
        return OAuthError("invalid_request", _validation_description(exc))
    if isinstance(exc, RateLimited):
        return OAuthError(
            "slow_down",
            exc.detail or "Too many requests; retry later.",
            status=429,
            headers={"Retry-After": exc.headers.get("Retry-After", "1")},
        )
    if isinstance(exc, ProblemError):
        if exc.status >= 500:
            return OAuthError(
                "temporarily_unavailable",
                exc.detail or "Try again shortly.",
                status=503,
                headers={k: v for k, v in exc.headers.items() if k.lower() == "retry-after"},
            )
        if exc.status == 401:
            return OAuthError(
                "invalid_client", exc.detail or "Client authentication failed.", status=401
            )
        # 413 and 415 keep their status: a body too large or not a form is still a bad request.
        error = OAuthError("invalid_request", exc.detail or "The request is malformed.")
        error.status = exc.status if exc.status in (413, 415) else 400
        return error
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 401:
        return OAuthError("invalid_client", "Malformed client credentials.", status=401)
    if isinstance(exc, StarletteHTTPException) and 400 <= exc.status_code < 500:
        return OAuthError("invalid_request", "The request body could not be read as a form.")
    return None


class OAuthRoute(CommittingRoute):
    """A committing route whose every failure is an RFC 6749 error: malformed bodies, missing
    or oversized parameters (FastAPI's 422 becomes 400 `invalid_request`), rate limits (429
    `slow_down`), an unavailable database (503 `temporarily_unavailable`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def oauth_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                error = as_oauth_error(exc)
                if error is None:
                    raise
                session: AsyncSession | None = getattr(request.state, "db_session", None)
                if session is not None:
                    await session.rollback()
                return oauth_error_response(request, error)

        return oauth_handler


def require_form(request: Request) -> None:
    """RFC 6749 §3.2: the token endpoint takes `application/x-www-form-urlencoded` only; a JSON
    body is an `invalid_request`, not a validation error."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != FORM:
        raise OAuthError(
            "invalid_request",
            f"Send the parameters as {FORM} (RFC 6749), not {content_type[:60]}.",
        )


OAUTH_PATHS = (TOKEN_PATH, REVOCATION_PATH, INTROSPECTION_PATH, LOGOUT_PATH)


def document_oauth_errors(app: FastAPI) -> None:
    """Drop the 422 FastAPI documents on every route with parameters from the OAuth
    endpoints: they never answer it (a malformed request is 400 `invalid_request`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for path in OAUTH_PATHS:
            for operation in schema.get("paths", {}).get(path, {}).values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- discovery

GRANT_TYPES = ("authorization_code", "password", "client_credentials", "refresh_token")
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
AUTHORIZE_PATH = "/auth/authorize"


def base_url(request: Request, issuer: str) -> str:
    """Where the endpoints are: the issuer when it is a URL (set `UPSTANDER_JWT_ISSUER` to the
    gateway's public https address in production), else the address this request came to."""
    if issuer.startswith(("https://", "http://")):
        return issuer.rstrip("/")
    return str(request.base_url).rstrip("/")


def server_metadata(request: Request, issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization-server metadata: only what is true of this server. The browser
    flow is the authorization code with PKCE (S256) alone: no implicit flow; public clients
    authenticate with `none` (their PKCE verifier)."""
    base = base_url(request, issuer)
    return {
        "issuer": issuer,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "jwks_uri": base + JWKS_PATH,
        "revocation_endpoint": base + REVOCATION_PATH,
        "introspection_endpoint": base + INTROSPECTION_PATH,
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207: the authorization response names its issuer (`iss`), against mix-ups.
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        # Revoking needs no client: holding the token is proof enough to end it.
        "revocation_endpoint_auth_methods_supported": ["none", *CLIENT_AUTH_METHODS],
        "introspection_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "scopes_supported": list(CATALOGUE),
        "service_documentation": base + "/docs",
    }


def openid_configuration(request: Request, issuer: str) -> dict[str, Any]:
    """OpenID Connect Discovery, with the same truths: Upstander issues access tokens (EdDSA
    JWTs) and no ID tokens yet, so the OpenID-only members it cannot honour are absent."""
    document = server_metadata(request, issuer)
    document.update(
        {
            "subject_types_supported": ["public"],
            "claims_supported": [
                "iss",
                "aud",
                "sub",
                "exp",
                "iat",
                "jti",
                "scope",
                "org",
                "roles",
                "typ",
            ],
        }
    )
    return document
