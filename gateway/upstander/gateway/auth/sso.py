"""Single sign-on: staff sign in at their organisation's own OpenID Connect provider (Google
Workspace, Microsoft Entra ID, Okta...) and come back with Upstander tokens.

The flow rides on the authorization code flow of auth/authorize.py: an app's
`GET /auth/authorize?...&login=sso` (or the sign-in form's link) lands in `begin_sign_in`,
which sends the browser to the provider with the authorization code flow of its own (`state`,
`nonce` and PKCE S256). The provider sends the browser back to `GET /auth/sso/callback`;
there the gateway exchanges the code (client secret sealed under the gateway's vault), checks
the ID token with Authlib (signature against the provider's JWKS, fetched again when a token
names a key it has not seen, for key rotation; `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`,
`at_hash`), and takes its verified `email` to the person of the organisation with that email.
An unknown email is refused unless the organisation enabled `create_people`; an email of
another organisation is unknown here. The app then gets its one-time code, as after a
password sign-in.

Against login CSRF and stolen callback URLs, a sign-in is bound to the browser that started
it: an HttpOnly cookie holds a random secret whose hash the sign-in row keeps, and the PKCE
verifier sent to the provider is derived from it, so it is never stored.

Authlib and joserfc are imported by the functions that use them, at the first SSO sign-in: a
gateway whose organisations sign in with passwords only never loads them (about 2 MB of
memory, docs/performance.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.authorize import (
    AuthorizeRequest,
    NotRedirectable,
    RedirectError,
    error_redirect,
    issue_code,
    not_redirectable_response,
    validate_request,
)
from upstander.gateway.auth.oauth import base_url
from upstander.gateway.auth.store import VAULT, DataKey, SsoLogin, SsoProvider
from upstander.gateway.identity import service
from upstander.gateway.identity.schemas import PersonCreate
from upstander.gateway.models import Person
from upstander.kit.app import make_router
from upstander.kit.auth import Role
from upstander.kit.clock import Clock
from upstander.kit.crypto import Keyring, Vault
from upstander.kit.db import get_session
from upstander.kit.errors import PROBLEM_JSON
from upstander.kit.http import tls_context

log = logging.getLogger("upstander.gateway.sso")

CALLBACK_PATH = "/auth/sso/callback"
COOKIE = "upstander_sso"
PROVIDER_SCOPE = "openid email profile"
# Signature algorithms accepted from a provider (what it advertises, within these). Never
# `none`, never a symmetric one (the client secret is no key to trust tokens by).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LEEWAY_SECONDS = 60
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

router = make_router(tags=["auth"])

__all__ = [
    "CALLBACK_PATH",
    "ProviderDirectory",
    "SsoError",
    "begin_sign_in",
    "router",
    "start_sso",
    "stop_sso",
    "valid_issuer",
    "validate_id_token",
]


class SsoError(Exception):
    """A single sign-on that cannot go on; `detail` is safe to show (no token, no email)."""

    def __init__(self, detail: str, error: str = "access_denied") -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error


def valid_issuer(issuer: str, mode: str) -> bool:
    """An issuer is an https URL with no query or fragment; plain http only for a loopback
    address in dev mode (a provider on the developer's machine, the tests')."""
    parts = urlsplit(issuer)
    if parts.query or parts.fragment or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and mode == "dev" and parts.hostname in _LOOPBACK


# ----------------------------------------------------------------------------- provider documents


class ProviderDirectory:
    """The providers' discovery documents and key sets, fetched over one HTTP client and
    cached per issuer. A key set is fetched again when an ID token names a key it lacks (the
    provider rotated its keys), at most once per `sso_jwks_refetch_seconds`."""

    def __init__(self, settings: Any, *, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.transport = transport
        self.http = httpx.AsyncClient(
            timeout=settings.sso_http_timeout_seconds,
            transport=transport,
            follow_redirects=False,
            verify=tls_context(),
        )
        self.refetch_seconds = float(settings.sso_jwks_refetch_seconds)
        self._metadata: dict[str, tuple[dict[str, Any], float]] = {}
        self._jwks: dict[str, tuple[dict[str, Any], float]] = {}

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("sso provider unreachable", extra={"error": type(exc).__name__})
            raise SsoError(
                "The organisation's sign-in provider cannot be reached; try again shortly.",
                "temporarily_unavailable",
            ) from None
        if not isinstance(document, dict):
            raise SsoError("The sign-in provider answered something unexpected.", "server_error")
        return document

    async def metadata(self, issuer: str) -> dict[str, Any]:
        cached = self._metadata.get(issuer)
        if cached and time.monotonic() - cached[1] < self.settings.sso_discovery_cache_seconds:
            return cached[0]
        document = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        # OpenID Connect Discovery §4.3: the document's issuer is exactly the one configured.
        if document.get("issuer") != issuer:
            raise SsoError("The sign-in provider's issuer does not match.", "server_error")
        for member in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(member), str):
                raise SsoError("The sign-in provider's discovery document is incomplete.")
        self._metadata[issuer] = (document, time.monotonic())
        return document

    async def jwks(self, issuer: str, *, refresh: bool = False) -> dict[str, Any]:
        cached = self._jwks.get(issuer)
        if cached and (not refresh or time.monotonic() - cached[1] < self.refetch_seconds):
            return cached[0]
        metadata = await self.metadata(issuer)
        document = await self._get_json(metadata["jwks_uri"])
        self._jwks[issuer] = (document, time.monotonic())
        return document

    async def aclose(self) -> None:
        await self.http.aclose()


async def validate_id_token(
    directory: ProviderDirectory,
    provider: SsoProvider,
    token: dict[str, Any],
    *,
    nonce: str,
    now: float,
) -> dict[str, Any]:
    """The ID token's claims, once Authlib has checked its signature with the provider's keys
    and its claims: issuer, audience (and `azp`), expiry, issue time, nonce, `at_hash`."""
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SsoError("The sign-in provider sent no ID token.")
    metadata = await directory.metadata(provider.issuer)
    advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in advertised if alg in ALGORITHMS]
    if not algorithms:
        raise SsoError("The sign-in provider signs with no algorithm Upstander accepts.")
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt
    from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
    from joserfc.jwk import KeySet
    from joserfc.jws import JWSRegistry

    registry = JWSRegistry(algorithms=algorithms)
    try:
        try:
            keys = KeySet.import_key_set(cast(Any, await directory.jwks(provider.issuer)))
            decoded = jwt.decode(id_token, keys, registry=registry)
        except (InvalidKeyIdError, BadSignatureError):
            # A key we have not seen (an unknown `kid`, or no `kid` and no key that verifies):
            # the provider may have rotated its keys. Fetch them again, once.
            keys = KeySet.import_key_set(
                cast(Any, await directory.jwks(provider.issuer, refresh=True))
            )
            decoded = jwt.decode(id_token, keys, registry=registry)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": provider.issuer},
                "aud": {"essential": True, "value": provider.client_id},
                "sub": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": provider.client_id,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(now=int(now), leeway=LEEWAY_SECONDS)
    except (JoseError, ValueError, TypeError) as exc:
        # The reason (a claim's name) is logged; the token and its claims are not.
        log.warning("sso id token refused", extra={"reason": type(exc).__name__})
        raise SsoError("The sign-in provider's ID token is not valid.") from None
    if not isinstance(claims.get("nonce"), str):
        raise SsoError("The sign-in provider's ID token is not valid.")
    return dict(claims)


# ----------------------------------------------------------------------------- the flow


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _verifier(browser_secret: str, state: str) -> str:
    """The PKCE verifier for the provider: derived from the browser's secret and the state,
    so nothing stored (nor the callback URL) gives it away. 43 base64url characters."""
    digest = hmac.new(browser_secret.encode(), b"pkce:" + state.encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def callback_url(request: Request) -> str:
    """What each organisation registers at its provider as the redirect URI."""
    return base_url(request, str(request.app.state.settings.jwt_issuer)) + CALLBACK_PATH


def _directory(request: Request) -> ProviderDirectory:
    directory: ProviderDirectory = request.app.state.sso_directory
    return directory


def _attach_vault(request: Request) -> Vault:
    # The slot is process-wide; tests run several gateways in one process, so each request
    # puts its own app's vault in it before sealing or unsealing.
    vault: Vault = request.app.state.gateway_vault
    VAULT.vault = vault
    return vault


async def begin_sign_in(
    session: AsyncSession,
    request: Request,
    authorize: AuthorizeRequest,
    provider: SsoProvider,
) -> Response:
    """Send the browser to the organisation's provider."""
    try:
        metadata = await _directory(request).metadata(provider.issuer)
    except SsoError as error:
        return error_redirect(
            request,
            authorize.redirect_uri,
            authorize.state,
            RedirectError("temporarily_unavailable", error.detail),
        )
    settings = request.app.state.settings
    clock: Clock = request.app.state.clock
    browser_secret = request.cookies.get(COOKIE) or ""
    if len(browser_secret) < 43 or len(browser_secret) > 64:
        browser_secret = secrets.token_urlsafe(32)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        SsoLogin(
            state_hash=_sha256(state),
            org_id=provider.org_id,
            provider_id=provider.id,
            browser_hash=_sha256(browser_secret),
            request={**authorize.params(), "nonce": nonce},
            created_at=now,
            expires_at=now + timedelta(seconds=settings.sso_login_ttl_seconds),
        )
    )
    await session.flush()
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    url = prepare_grant_uri(
        metadata["authorization_endpoint"],
        client_id=provider.client_id,
        response_type="code",
        redirect_uri=callback_url(request),
        scope=PROVIDER_SCOPE,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(_verifier(browser_secret, state)),
        code_challenge_method="S256",
    )
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        browser_secret,
        max_age=settings.sso_login_ttl_seconds,
        path="/auth/sso",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


async def _exchange(
    request: Request, provider: SsoProvider, metadata: dict[str, Any], code: str, verifier: str
) -> dict[str, Any]:
    """The provider's token response for `code` (the client authenticated by its secret,
    HTTP Basic unless the provider takes only the form; Authlib prepares both)."""
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    endpoint = metadata["token_endpoint"]
    from authlib.oauth2.auth import ClientAuth
    from authlib.oauth2.rfc6749.parameters import prepare_token_request

    body = prepare_token_request(
        "authorization_code",
        redirect_uri=callback_url(request),
        code=code,
        code_verifier=verifier,
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    auth = ClientAuth(provider.client_id, provider.client_secret or "", method)
    endpoint, headers, body = auth.prepare("POST", endpoint, headers, body)
    try:
        answer = await _directory(request).http.post(endpoint, headers=headers, content=body)
    except httpx.HTTPError:
        raise SsoError(
            "The organisation's sign-in provider cannot be reached; try again shortly.",
            "temporarily_unavailable",
        ) from None
    try:
        token = answer.json()
    except ValueError:
        token = None
    if answer.status_code != 200 or not isinstance(token, dict) or "error" in token:
        error = token.get("error") if isinstance(token, dict) else None
        log.warning(
            "sso code exchange refused",
            extra={"status": answer.status_code, "error": str(error)[:64]},
        )
        raise SsoError("The sign-in provider refused to complete the sign-in.")
    return token


def _verified_email(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise SsoError("The sign-in provider did not give an email address.")
    if verified is not True and verified != "true":
        raise SsoError("The sign-in provider has not verified this email address.")
    return email.strip().lower()


async def link_person(
    session: AsyncSession, provider: SsoProvider, claims: dict[str, Any]
) -> Person:
    """The organisation's active person with the verified email (created when the
    organisation allows it); never a person of another organisation."""
    email = _verified_email(claims)
    domain = email.rsplit("@", 1)[1]
    allowed = [d.lower() for d in provider.allowed_domains or []]
    if allowed and domain not in allowed:
        raise SsoError("This email domain may not sign in to this organisation.")
    person = await session.scalar(
        select(Person).where(Person.org_id == provider.org_id, Person.email == email)
    )
    if person is not None:
        if not person.active:
            raise SsoError("This account is deactivated.")
        return person
    if not provider.create_people:
        # No silent account creation: an admin adds people, or enables `create_people`.
        raise SsoError("There is no account for this email in this organisation.")
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    try:
        data = PersonCreate(
            email=email,
            name=(name or email.split("@", 1)[0])[:200] or "Staff member",
            roles=[Role.STAFF],
        )
    except ValueError:
        raise SsoError("This email address cannot be used for an account.") from None
    created: Person = await service.create_person(
        session, service.system_principal(provider.org_id), data
    )
    log.info("person created on first single sign-on", extra={"org_id": str(provider.org_id)})
    return created


@router.get(
    CALLBACK_PATH,
    operation_id="sso_callback",
    summary="Where an organisation's sign-in provider sends the browser back",
    description=(
        "Register this URL (on the gateway's public address) as the redirect URI of the "
        "Upstander application at your OpenID Connect provider. Query: the provider's `code` "
        "(or `error`) and `state`. The sign-in must have started in the same browser (a "
        "cookie binds it). Success: 303 to the app's redirect URI with `code`, `state` and "
        "`iss`; a refused sign-in goes back as `error=access_denied` with a description. A "
        "callback that belongs to no sign-in started here is a 400 shown to the person."
    ),
    response_class=Response,
    responses={
        303: {"description": "Back to the app with a code, or an error."},
        400: {
            "description": "No sign-in started in this browser with this state.",
            "content": {PROBLEM_JSON: {}, "text/html": {}},
        },
    },
    openapi_extra={
        "security": [{}],
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in ("code", "state", "error", "error_description", "iss")
        ],
    },
)
async def sso_callback(request: Request, session: AsyncSession = Depends(get_session)) -> Response:
    query = request.query_params
    state = query.get("state") or ""
    unknown = "This sign-in has expired or did not start in this browser; start again."
    if not state or len(state) > 200:
        return not_redirectable_response(request, unknown)
    login = await session.get(SsoLogin, _sha256(state))
    browser_secret = request.cookies.get(COOKIE) or ""
    clock: Clock = request.app.state.clock
    now = clock.now()
    if (
        login is None
        or login.used_at is not None
        or login.expires_at <= now
        or not hmac.compare_digest(login.browser_hash, _sha256(browser_secret))
    ):
        return not_redirectable_response(request, unknown)
    claimed = await session.execute(
        update(SsoLogin)
        .where(SsoLogin.state_hash == login.state_hash, SsoLogin.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return not_redirectable_response(request, unknown)
    saved = dict(login.request)
    nonce = str(saved.pop("nonce", ""))
    try:
        authorize = await validate_request(session, saved)
    except NotRedirectable as error:
        return not_redirectable_response(request, error.detail)
    except RedirectError as error:
        return error_redirect(request, saved["redirect_uri"], saved.get("state"), error)
    try:
        if query.get("error"):
            raise SsoError("The sign-in was cancelled or refused at the provider.")
        code = query.get("code") or ""
        if not code or len(code) > 2048:
            raise SsoError("The sign-in provider sent no code.")
        vault = _attach_vault(request)
        await vault.fetch_dek(login.provider_id)
        provider = await session.get(SsoProvider, login.provider_id)
        if provider is None or not provider.enabled or provider.org_id != authorize.org.id:
            raise SsoError("Single sign-on is not enabled for this organisation.")
        directory = _directory(request)
        metadata = await directory.metadata(provider.issuer)
        token = await _exchange(request, provider, metadata, code, _verifier(browser_secret, state))
        claims = await validate_id_token(
            directory, provider, token, nonce=nonce, now=now.timestamp()
        )
        person = await link_person(session, provider, claims)
        response = await issue_code(session, request, authorize, person, method="sso")
    except SsoError as error:
        response = error_redirect(
            request,
            authorize.redirect_uri,
            authorize.state,
            RedirectError(error.error, error.detail),
        )
    except RedirectError as error:
        response = error_redirect(request, authorize.redirect_uri, authorize.state, error)
    response.delete_cookie(COOKIE, path="/auth/sso")
    return response


# ----------------------------------------------------------------------------- startup


async def start_sso(app: FastAPI) -> None:
    """The gateway's vault (the providers' client secrets are sealed under it) and the
    providers' document cache. ServiceSpec on_startup."""
    settings = app.state.settings
    vault = Vault(Keyring.from_settings(settings), app.state.engine, DataKey)
    VAULT.vault = vault
    vault.install(app.state.sessionmaker)
    app.state.gateway_vault = vault
    app.state.sso_directory = ProviderDirectory(
        settings, transport=getattr(app.state, "sso_transport", None)
    )


async def stop_sso(app: FastAPI) -> None:
    directory: ProviderDirectory | None = getattr(app.state, "sso_directory", None)
    if directory is not None:
        await directory.aclose()
