"""Browser sign-in: the authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636 S256 only)
for campaign frontends and mobile apps.

1. The app sends the staff member's browser to `GET /auth/authorize` with `response_type=code`,
   its `client_id`, a registered `redirect_uri` (matched exactly), a `state`, a
   `code_challenge` (S256) and optionally `scope`.
2. The gateway shows a minimal sign-in form (email and password of the client's organisation)
   or, with `login=sso` (or when the organisation allows only single sign-on), sends the
   browser to the organisation's own OpenID Connect provider (auth/sso.py).
3. On success the browser is sent (303) to `redirect_uri?code=...&state=...&iss=...`; the code
   is single use, expires after `authorization_code_ttl_seconds` (60 s) and is bound to the
   client, the redirect URI and the challenge.
4. The app exchanges it at `POST /auth/token` (`grant_type=authorization_code`, `code`,
   `redirect_uri`, `client_id`, `code_verifier`; a confidential client authenticates too) for
   an access token and a rotating refresh token. A code presented twice ends the sign-in it
   started.

No implicit flow: `response_type=token` is `unsupported_response_type`. Errors before the
client and redirect URI are known good are shown to the person (never redirected); later ones
go back to the app as `error=...&state=...` (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.oauth import OAuthError, base_url
from upstander.gateway.auth.passwords import hash_secret, verify_secret
from upstander.gateway.auth.pkce import METHOD, valid_challenge, verify
from upstander.gateway.auth.store import AuthorizationCode, SsoProvider
from upstander.gateway.auth.tokens import (
    IssuedToken,
    TokenIssuer,
    _new_refresh_token,
    requested_scopes,
    revoke_family,
)
from upstander.gateway.models import ApiClient, Org, Person
from upstander.kit.app import make_router
from upstander.kit.clock import Clock
from upstander.kit.db import get_session
from upstander.kit.errors import PROBLEM_BASE, PROBLEM_JSON
from upstander.kit.scopes import CATALOGUE, scopes_for_roles

AUTHORIZE_PATH = "/auth/authorize"
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
)
MAX_STATE = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
INVALID_SIGN_IN = "The email or password is not valid."

router = make_router(tags=["auth"])

__all__ = [
    "AUTHORIZE_PATH",
    "AuthorizeRequest",
    "NotRedirectable",
    "RedirectError",
    "authorization_code_grant",
    "code_client",
    "issue_code",
    "password_org",
    "redirect_with",
    "router",
    "validate_request",
]


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class NotRedirectable(Exception):
    """An authorization request whose client or redirect URI is not known good: the person
    is told, the browser is not sent anywhere (RFC 6749 §4.1.2.1)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class RedirectError(Exception):
    """An error to send back to the app at its (verified) redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class AuthorizeRequest:
    client: ApiClient
    org: Org
    redirect_uri: str
    state: str
    code_challenge: str
    # The scopes asked for (None: every scope the client and the person both hold).
    scope: list[str] | None

    def params(self) -> dict[str, str]:
        """The request again, for the sign-in form's hidden fields and the SSO round trip."""
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": METHOD,
        }
        if self.scope:
            params["scope"] = " ".join(self.scope)
        return params


def client_scopes(client: ApiClient) -> frozenset[str]:
    return frozenset(s for s in client.scopes or [] if s in CATALOGUE)


async def validate_request(
    session: AsyncSession, params: Mapping[str, str], repeated: list[str] | None = None
) -> AuthorizeRequest:
    """The authorization request, checked: `NotRedirectable` while the client or the redirect
    URI is in doubt, `RedirectError` after."""
    client_id = params.get("client_id") or ""
    if not client_id or len(client_id) > 100:
        raise NotRedirectable("The request names no client (client_id).")
    client = await session.scalar(
        select(ApiClient).where(
            ApiClient.client_id == client_id,
            ApiClient.active.is_(True),
            ApiClient.kind == "client",
        )
    )
    org = await session.get(Org, client.org_id) if client and client.org_id else None
    if client is None or org is None or not org.active:
        raise NotRedirectable("This application is not registered (unknown client_id).")
    redirect_uri = params.get("redirect_uri") or ""
    # Exact string comparison with a registered URI: no prefix, no pattern, no normalising.
    if not redirect_uri or redirect_uri not in (client.redirect_uris or []):
        raise NotRedirectable("The redirect_uri is not registered for this application.")
    if repeated:
        raise RedirectError(
            "invalid_request", f"Parameters sent more than once: {', '.join(repeated)[:200]}."
        )
    response_type = params.get("response_type") or ""
    if response_type != "code":
        raise RedirectError(
            "unsupported_response_type",
            "Only response_type=code (with PKCE) is supported; there is no implicit flow.",
        )
    state = params.get("state") or ""
    if not state:
        raise RedirectError("invalid_request", "The 'state' parameter is required.")
    if len(state) > MAX_STATE:
        raise RedirectError("invalid_request", f"'state' is longer than {MAX_STATE} characters.")
    if (params.get("code_challenge_method") or "") != METHOD:
        raise RedirectError(
            "invalid_request", "PKCE is required: code_challenge_method=S256 (plain is refused)."
        )
    challenge = params.get("code_challenge") or ""
    if not valid_challenge(challenge):
        raise RedirectError(
            "invalid_request", "code_challenge must be the S256 challenge (43 base64url chars)."
        )
    try:
        scope = requested_scopes((params.get("scope") or "")[:1024] or None)
    except OAuthError as error:
        raise RedirectError("invalid_scope", error.detail or "Unknown scope.") from None
    held = client_scopes(client)
    if scope is not None:
        beyond = [name for name in scope if name not in held]
        if beyond:
            raise RedirectError(
                "invalid_scope", f"The requested scope exceeds the client's: {' '.join(beyond)}."
            )
    elif not held:
        raise RedirectError("invalid_scope", "The application holds no scopes to act with.")
    return AuthorizeRequest(client, org, redirect_uri, state, challenge, scope)


def person_scope(request: AuthorizeRequest, person: Person) -> str:
    """What the sign-in may do: the scopes the person's roles hold, the client holds and the
    request asked for (all three); `RedirectError` when nothing is left."""
    held = scopes_for_roles(person.roles or []) & client_scopes(request.client)
    if request.scope is not None:
        held &= frozenset(request.scope)
    if not held:
        raise RedirectError(
            "access_denied", "Your roles allow none of the scopes this application asked for."
        )
    return " ".join(sorted(held))


def redirect_with(redirect_uri: str, params: dict[str, str], *, status: int = 303) -> Response:
    """Send the browser back to the app with `params` added to its redirect URI's query."""
    separator = "&" if urlsplit(redirect_uri).query else "?"
    target = redirect_uri + separator + urlencode(params)
    return RedirectResponse(target, status_code=status, headers={"Cache-Control": "no-store"})


def _issuer(request: Request) -> str:
    return str(request.app.state.settings.jwt_issuer)


def error_redirect(
    request: Request, redirect_uri: str, state: str | None, error: RedirectError
) -> Response:
    params = {"error": error.error, "error_description": error.description}
    if state:
        params["state"] = state
    params["iss"] = _issuer(request)
    return redirect_with(redirect_uri, params)


async def issue_code(
    session: AsyncSession,
    request: Request,
    authorize: AuthorizeRequest,
    person: Person,
    *,
    method: str,
) -> Response:
    """Make a one-time code for `person` and send the browser back to the app with it."""
    scope = person_scope(authorize, person)
    clock: Clock = request.app.state.clock
    now = clock.now()
    code = secrets.token_urlsafe(32)
    session.add(
        AuthorizationCode(
            code_hash=hash_code(code),
            api_client_id=authorize.client.id,
            org_id=authorize.org.id,
            person_id=person.id,
            redirect_uri=authorize.redirect_uri,
            code_challenge=authorize.code_challenge,
            scope=scope,
            method=method,
            created_at=now,
            expires_at=now
            + timedelta(seconds=request.app.state.settings.authorization_code_ttl_seconds),
        )
    )
    await session.flush()
    return redirect_with(
        authorize.redirect_uri,
        {"code": code, "state": authorize.state, "iss": _issuer(request)},
    )


# ----------------------------------------------------------------------------- pages


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · Upstander</title></head><body><main>{body}</main>"
        "</body></html>"
    )
    return HTMLResponse(
        document, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


def not_redirectable_response(request: Request, detail: str, status: int = 400) -> Response:
    """The person is told (an HTML page for a browser, problem+json for anything else)."""
    if "text/html" in request.headers.get("accept", ""):
        return _page(
            "Sign-in error",
            f"<h1>This sign-in cannot go on</h1><p>{html.escape(detail)}</p>",
            status,
        )
    return JSONResponse(
        {
            "type": PROBLEM_BASE + "authorization-request-invalid",
            "title": "Invalid authorization request",
            "status": status,
            "detail": detail,
            "instance": request.url.path,
        },
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={"Cache-Control": "no-store"},
    )


def sign_in_form(
    authorize: AuthorizeRequest,
    *,
    sso: bool,
    error: str | None = None,
    email: str = "",
    status: int = 200,
) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in authorize.params().items()
    )
    message = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    sso_link = ""
    if sso:
        query = urlencode({**authorize.params(), "login": "sso"})
        sso_link = (
            f'<p><a href="{AUTHORIZE_PATH}?{html.escape(query)}">'
            "Sign in with your organisation's single sign-on</a></p>"
        )
    body = (
        f"<h1>Sign in to {html.escape(authorize.org.name)}</h1>"
        f"<p>{html.escape(authorize.client.name)} asks to act for you.</p>{message}"
        f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
        '<p><label>Email <input type="email" name="username" autocomplete="username" '
        f'required maxlength="320" value="{html.escape(email)}"></label></p>'
        '<p><label>Password <input type="password" name="password" '
        'autocomplete="current-password" required maxlength="1024"></label></p>'
        '<p><button type="submit">Sign in</button></p></form>'
        f"{sso_link}"
    )
    return _page("Sign in", body, status)


async def _sso_provider(session: AsyncSession, org_id: uuid.UUID) -> SsoProvider | None:
    return await session.scalar(
        select(SsoProvider).where(SsoProvider.org_id == org_id, SsoProvider.enabled.is_(True))
    )


def _single(params: Any) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    repeated: list[str] = []
    for name in (*PARAMETERS, "login", "username", "password"):
        got = params.getlist(name)
        if len(got) > 1:
            repeated.append(name)
        if got:
            # A control character is in no valid parameter (and PostgreSQL takes no NUL).
            value = str(got[0])
            values[name] = "" if _CONTROL.search(value) else value
    return values, repeated


_DESCRIPTION = (
    "The start of the authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636). Query: "
    "`response_type=code`, `client_id`, `redirect_uri` (exactly as registered on the client), "
    "`state` (required; returned unchanged), `code_challenge` and `code_challenge_method=S256` "
    "(plain is refused), optional `scope` (space-separated; at most what the client holds), "
    "optional `login=sso` to go straight to the organisation's single sign-on.\n\n"
    "Answers an HTML sign-in form (email and password of the client's organisation), or a "
    "302 to the organisation's OpenID Connect provider. An unknown client or unregistered "
    "redirect URI is a 400 shown here (never redirected); any other error is sent back to "
    "the redirect URI as `error`, `error_description`, `state` and `iss`."
)


@router.get(
    AUTHORIZE_PATH,
    operation_id="authorize",
    summary="Sign a staff member in from a browser (authorization code with PKCE)",
    description=_DESCRIPTION,
    response_class=HTMLResponse,
    responses={
        200: {"description": "The sign-in form.", "content": {"text/html": {}}},
        302: {"description": "To the organisation's single sign-on provider."},
        303: {"description": "Back to the app's redirect URI with an error."},
        400: {
            "description": "Unknown client or unregistered redirect URI.",
            "content": {PROBLEM_JSON: {}, "text/html": {}},
        },
    },
    openapi_extra={
        "security": [{}],
        "parameters": [
            {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}
            for name, required in (
                ("response_type", True),
                ("client_id", True),
                ("redirect_uri", True),
                ("state", True),
                ("code_challenge", True),
                ("code_challenge_method", True),
                ("scope", False),
                ("login", False),
            )
        ],
    },
)
async def authorize(request: Request, session: AsyncSession = Depends(get_session)) -> Response:
    params, repeated = _single(request.query_params)
    try:
        authorize_request = await validate_request(session, params, repeated)
    except NotRedirectable as error:
        return not_redirectable_response(request, error.detail)
    except RedirectError as error:
        return error_redirect(request, params["redirect_uri"], params.get("state"), error)
    provider = await _sso_provider(session, authorize_request.org.id)
    if params.get("login") == "sso":
        if provider is None:
            return error_redirect(
                request,
                authorize_request.redirect_uri,
                authorize_request.state,
                RedirectError("invalid_request", "The organisation has no single sign-on."),
            )
        from upstander.gateway.auth.sso import begin_sign_in

        return await begin_sign_in(session, request, authorize_request, provider)
    return sign_in_form(authorize_request, sso=provider is not None)


@router.post(
    AUTHORIZE_PATH,
    operation_id="authorize_with_password",
    summary="The sign-in form's answer (email and password)",
    description=(
        "Form-encoded: the authorization request's parameters (as hidden fields of the form "
        "`GET /auth/authorize` shows), `username` (email) and `password`. Success: 303 to "
        "the redirect URI with `code`, `state` and `iss`. A wrong email or password shows "
        "the form again (400); too many attempts for one account, 429."
    ),
    response_class=HTMLResponse,
    responses={
        303: {"description": "Back to the app's redirect URI with `code` and `state`."},
        400: {
            "description": "The form again, with an error; or an unknown client or "
            "unregistered redirect URI.",
            "content": {"text/html": {}, PROBLEM_JSON: {}},
        },
        415: {"description": "Not a form.", "content": {"text/html": {}, PROBLEM_JSON: {}}},
        429: {"description": "Too many attempts.", "content": {"text/html": {}, PROBLEM_JSON: {}}},
    },
    openapi_extra={
        "security": [{}],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["username", "password", "client_id", "redirect_uri"],
                        "properties": {
                            name: {"type": "string"}
                            for name in (*PARAMETERS, "username", "password")
                        },
                    },
                    "example": {
                        "response_type": "code",
                        "client_id": "cl_frontend",
                        "redirect_uri": "https://app.campaign.example/callback",
                        "state": "af0ifjsldkj",
                        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                        "code_challenge_method": "S256",
                        "username": "ana@campaign.example",
                        "password": "a long passphrase",
                    },
                }
            },
        },
    },
)
async def authorize_with_password(
    request: Request, session: AsyncSession = Depends(get_session)
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return not_redirectable_response(request, "Send the sign-in form as a form.", 415)
    form = await request.form()
    params, repeated = _single(form)
    try:
        authorize_request = await validate_request(session, params, repeated)
    except NotRedirectable as error:
        return not_redirectable_response(request, error.detail)
    except RedirectError as error:
        return error_redirect(request, params["redirect_uri"], params.get("state"), error)
    provider = await _sso_provider(session, authorize_request.org.id)
    email = (params.get("username") or "").strip().lower()[:320]
    password = (params.get("password") or "")[:1024]
    if not email or not password:
        return sign_in_form(
            authorize_request,
            sso=provider is not None,
            error="Enter your email and password.",
            email=email,
            status=400,
        )
    limits = request.app.state.auth_account_limits
    retry_after = await limits.hit("user:" + limits.key(email))
    if retry_after:
        response = sign_in_form(
            authorize_request,
            sso=provider is not None,
            error="Too many sign-in attempts; wait a minute and try again.",
            email=email,
            status=429,
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    person = await session.scalar(
        select(Person).where(
            Person.org_id == authorize_request.org.id,
            Person.email == email,
            Person.active.is_(True),
        )
    )
    # One Argon2 verification whoever asks: an unknown email costs as long as a wrong password.
    matches, needs_rehash = await verify_secret(
        person.password_hash if person is not None else None, password
    )
    if person is None or not matches:
        return sign_in_form(
            authorize_request,
            sso=provider is not None,
            error=INVALID_SIGN_IN,
            email=email,
            status=400,
        )
    if needs_rehash:
        person.password_hash = await hash_secret(password)
    try:
        return await issue_code(session, request, authorize_request, person, method="password")
    except RedirectError as error:
        return error_redirect(
            request, authorize_request.redirect_uri, authorize_request.state, error
        )


# ----------------------------------------------------------------------------- token exchange


async def code_client(
    session: AsyncSession,
    credentials: tuple[str, str] | None,
    client_id: str | None,
) -> ApiClient:
    """The client exchanging a code: a confidential one authenticated by its secret, a public
    one named by `client_id` alone (PKCE stands in for the secret it cannot keep)."""
    from upstander.gateway.auth.tokens import authenticate_client

    if credentials is not None:
        if client_id and client_id != credentials[0]:
            raise OAuthError("invalid_request", "client_id does not match the authentication.")
        return await authenticate_client(
            session, client_id=credentials[0], client_secret=credentials[1]
        )
    if not client_id:
        raise OAuthError("invalid_client", "client_id is required.", status=401)
    client = await session.scalar(
        select(ApiClient).where(
            ApiClient.client_id == client_id[:100],
            ApiClient.active.is_(True),
            ApiClient.kind == "client",
        )
    )
    if client is None or not client.public:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    org = await session.get(Org, client.org_id) if client.org_id else None
    if org is None or not org.active:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    return client


async def authorization_code_grant(
    session: AsyncSession,
    issuer: TokenIssuer,
    client: ApiClient,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> IssuedToken:
    clock = issuer.clock
    invalid = OAuthError("invalid_grant", "The authorization code is not valid.")
    row = await session.get(AuthorizationCode, hash_code(code))
    if row is None or row.api_client_id != client.id:
        raise invalid
    now = clock.now()
    if row.used_at is not None:
        # A code presented twice: whoever holds it, the sign-in it started ends (RFC 6749
        # §4.1.2). Committed here: the error response would roll it back.
        if row.family_id is not None:
            await revoke_family(session, row.family_id, clock, row.org_id)
            await session.commit()
        raise invalid
    if row.expires_at <= now:
        raise invalid
    if row.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request.")
    if not verify(code_verifier, row.code_challenge):
        raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")
    family_id = uuid.uuid4()
    claimed = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == row.code_hash, AuthorizationCode.used_at.is_(None))
        .values(used_at=now, family_id=family_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise invalid
    person = await session.get(Person, row.person_id)
    org = await session.get(Org, row.org_id)
    if person is None or org is None or not person.active or not org.active:
        raise invalid
    if person.org_id != client.org_id:
        raise invalid
    scope = row.scope or ""
    if not scope:
        raise invalid
    refresh, _row = await _new_refresh_token(
        session, issuer.settings, clock, person, family_id=family_id, scope=scope
    )
    access, expires_in = await issuer.issue_person_token(person, scope, family_id)
    return IssuedToken(access, expires_in, scope, refresh)


async def password_org(
    session: AsyncSession,
    settings: Any,
    credentials: tuple[str, str] | None,
    client_id: str | None,
    org_slug: str | None,
) -> str | None:
    """The per-client switch of the password grant. Named (and, if confidential,
    authenticated), the client must allow it (`allow_password_grant`), and the person must be
    of its organisation: the organisation slug to look them up in is returned. Without a
    client, the grant is for first-party tools only (`password_grant_without_client`)."""
    if credentials is None and not client_id:
        if not settings.password_grant_open:
            raise OAuthError(
                "unauthorized_client",
                "The password grant needs a client that allows it (client_id).",
            )
        return org_slug
    client = await code_client(session, credentials, client_id)
    if not client.allow_password_grant:
        raise OAuthError("unauthorized_client", "This client may not use the password grant.")
    org = await session.get(Org, client.org_id) if client.org_id else None
    if org is None:
        raise OAuthError("unauthorized_client", "This client may not use the password grant.")
    if org_slug and org_slug.strip().lower() != org.slug:
        raise OAuthError("invalid_grant", "The username, password or organisation is not valid.")
    return org.slug


def authorization_endpoint(request: Request) -> str:
    return base_url(request, _issuer(request)) + AUTHORIZE_PATH
