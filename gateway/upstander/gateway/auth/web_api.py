"""An organisation's browser-facing settings, under `/identity/v1/`: an API client's browser
sign-in (public or confidential, redirect URIs, allowed origins, the password-grant switch),
the organisation's own single sign-on provider, and the origins the organisation allows.
Admins only; everything scoped to the caller's organisation (another's ids are 404)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.sso import callback_url, valid_issuer
from upstander.gateway.auth.store import VAULT, OrgCorsOrigins, SsoProvider
from upstander.gateway.edge.cors import normalise_origin
from upstander.gateway.identity import service
from upstander.gateway.models import ApiClient
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.crypto import Vault
from upstander.kit.db import get_session
from upstander.kit.errors import NotFound, PreconditionFailed, ProblemError, problem_responses
from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.kit.scopes import Scope, require_scope

router = make_router(prefix="/identity/v1", tags=["identity"])

Admin = Annotated[Principal, require_roles(Role.ADMIN)]
Session = Annotated[AsyncSession, Depends(get_session)]
IfMatch = Annotated[str | None, Header(max_length=200)]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidSetting(ProblemError):
    status, slug, title = 422, "invalid-setting", "Invalid setting"


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> str:
    """An absolute URI with no fragment: https, http on a loopback address (native apps,
    RFC 8252 §7.3), or an app's private-use scheme in reverse-domain form (§7.1)."""
    from urllib.parse import urlsplit

    if len(uri) > 2000 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in uri):
        raise ValueError("a redirect URI is at most 2000 characters, without spaces")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValueError("a redirect URI has no fragment")
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.fullmatch(scheme):
        raise ValueError("a redirect URI is absolute")
    if scheme == "https":
        if not parts.hostname:
            raise ValueError("an https redirect URI names a host")
        return uri
    if scheme == "http":
        if parts.hostname and _is_loopback(parts.hostname):
            return uri
        raise ValueError("plain http is only for loopback redirect URIs (native apps)")
    if "." in scheme and scheme not in {"javascript", "data", "file"}:
        return uri
    raise ValueError("use https, loopback http or a reverse-domain private-use scheme")


class ClientBrowser(RequestModel):
    public: bool = Field(
        default=False,
        description="A public client (a browser or mobile app) keeps no secret: it uses the "
        "authorization code with PKCE and authenticates with nothing else; its secret stops "
        "working.",
        examples=[True],
    )
    redirect_uris: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Where `GET /auth/authorize` may send codes; compared exactly.",
        examples=[["https://app.campaign.example/callback"]],
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Browser origins (scheme, host, port) that may call the API (CORS).",
        examples=[["https://app.campaign.example"]],
    )
    allow_password_grant: bool = Field(
        default=False,
        description="Let this first-party tool use the password grant (send its client_id).",
        examples=[False],
    )

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(check_redirect_uri(uri) for uri in value))

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_origin(origin) for origin in value))


class ClientBrowserOut(ResponseModel):
    id: uuid.UUID
    client_id: str = Field(examples=["cl_5Yk2m9QeT0x1"])
    public: bool = Field(examples=[True])
    redirect_uris: list[str] = Field(examples=[["https://app.campaign.example/callback"]])
    allowed_origins: list[str] = Field(examples=[["https://app.campaign.example"]])
    allow_password_grant: bool = Field(examples=[False])


class SsoConfig(RequestModel):
    issuer: str = Field(
        max_length=500,
        description="The provider's issuer, exactly as its discovery document says "
        "(`<issuer>/.well-known/openid-configuration`).",
        examples=["https://accounts.google.com"],
    )
    client_id: str = Field(
        min_length=1, max_length=255, examples=["1234567890-abc.apps.googleusercontent.com"]
    )
    client_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Write-only; sealed at rest. Required the first time; omit it to keep it.",
        examples=["GOCSPX-kept-secret"],
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Email domains that may sign in this way; empty: any the provider vouches for.",
        examples=[["campaign.example"]],
    )
    create_people: bool = Field(
        default=False,
        description="Create a person (role `staff`) at their first sign-in rather than refuse "
        "an email the directory does not have.",
        examples=[False],
    )
    enabled: bool = Field(default=True, examples=[True])

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or _CONTROL.search(value):
            raise ValueError("the issuer is an https URL")
        return value

    @field_validator("client_id", "client_secret")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("no control characters")
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        domains = [domain.strip().lower() for domain in value]
        for domain in domains:
            if not _DOMAIN.fullmatch(domain):
                raise ValueError("an allowed domain is a DNS name such as campaign.example")
        return list(dict.fromkeys(domains))


class SsoConfigOut(ResponseModel):
    issuer: str = Field(examples=["https://accounts.google.com"])
    client_id: str = Field(examples=["1234567890-abc.apps.googleusercontent.com"])
    has_client_secret: bool = Field(examples=[True])
    allowed_domains: list[str] = Field(examples=[["campaign.example"]])
    create_people: bool = Field(examples=[False])
    enabled: bool = Field(examples=[True])
    redirect_uri: str = Field(
        description="Register this at the provider as the application's redirect URI.",
        examples=["https://api.upstander.example/auth/sso/callback"],
    )
    version: int = Field(description="Also the ETag.", examples=[1])
    created_at: datetime
    updated_at: datetime


class OrgOrigins(RequestModel):
    origins: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Browser origins that may call the API for this organisation (CORS), "
        "besides those of its clients.",
        examples=[["https://campaign.example"]],
    )

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_origin(origin) for origin in value))


class OrgOriginsOut(ResponseModel):
    origins: list[str] = Field(examples=[["https://campaign.example"]])
    version: int = Field(examples=[1])


def _org(principal: Principal) -> uuid.UUID:
    if principal.org_id is None:
        raise NotFound("No such organisation.")
    return principal.org_id


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _check_if_match(if_match: str | None, version: int) -> None:
    if if_match is not None and if_match.strip() not in ("*", f'"{version}"', f'W/"{version}"'):
        raise PreconditionFailed("The resource changed since you read it (ETag mismatch).")


def _origins_changed(request: Request) -> None:
    registry = getattr(request.app.state, "cors_registry", None)
    if registry is None:
        return
    callbacks = getattr(request.state, "after_commit", None)
    if callbacks is None:
        callbacks = request.state.after_commit = []
    callbacks.append(registry.invalidate)


# --- a client's browser sign-in ------------------------------------------------------------------


def _client_out(client: ApiClient) -> ClientBrowserOut:
    return ClientBrowserOut(
        id=client.id,
        client_id=client.client_id,
        public=client.public,
        redirect_uris=list(client.redirect_uris or []),
        allowed_origins=list(client.allowed_origins or []),
        allow_password_grant=client.allow_password_grant,
    )


@router.get(
    "/clients/{client_id}/browser",
    operation_id="get_client_browser_settings",
    dependencies=[require_scope(Scope.CLIENTS_MANAGE)],
    summary="An API client's browser sign-in and CORS settings",
    response_model=ClientBrowserOut,
    responses=problem_responses(401, 403, 404),
)
async def get_client_browser(
    session: Session, principal: Admin, client_id: uuid.UUID
) -> ClientBrowserOut:
    return _client_out(await service.get_client(session, principal, client_id))


@router.put(
    "/clients/{client_id}/browser",
    operation_id="set_client_browser_settings",
    dependencies=[require_scope(Scope.CLIENTS_MANAGE)],
    summary="Make a client a browser or mobile app: redirect URIs, origins, password grant",
    description=(
        "Replaces the settings. A `public` client (a single-page app, a mobile app) signs "
        "staff in with `GET /auth/authorize` (authorization code with PKCE) at one of its "
        "`redirect_uris` (compared exactly) and authenticates with nothing else: its secret "
        "stops working. `allowed_origins` may call the API from a browser. "
        "`allow_password_grant` is for first-party tools only."
    ),
    response_model=ClientBrowserOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def set_client_browser(
    request: Request,
    session: Session,
    principal: Admin,
    client_id: uuid.UUID,
    body: ClientBrowser,
) -> ClientBrowserOut:
    client = await service.get_client(session, principal, client_id)
    client.public = body.public
    client.redirect_uris = list(body.redirect_uris)
    client.allowed_origins = list(body.allowed_origins)
    client.allow_password_grant = body.allow_password_grant
    await session.flush()
    _origins_changed(request)
    return _client_out(client)


# --- the organisation's single sign-on ----------------------------------------------------------


def _sso_out(request: Request, provider: SsoProvider) -> SsoConfigOut:
    return SsoConfigOut(
        issuer=provider.issuer,
        client_id=provider.client_id,
        has_client_secret=provider.client_secret is not None,
        allowed_domains=list(provider.allowed_domains or []),
        create_people=provider.create_people,
        enabled=provider.enabled,
        redirect_uri=callback_url(request),
        version=provider.version,
        created_at=provider.created_at,
        updated_at=provider.updated_at,
    )


async def _provider(request: Request, session: AsyncSession, org_id: uuid.UUID) -> SsoProvider:
    vault = _vault(request)
    provider_id = await session.scalar(select(SsoProvider.id).where(SsoProvider.org_id == org_id))
    if provider_id is None:
        raise NotFound("This organisation has no single sign-on configured.")
    await vault.fetch_dek(provider_id)
    provider = await session.get(SsoProvider, provider_id)
    if provider is None:
        raise NotFound("This organisation has no single sign-on configured.")
    return provider


def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.gateway_vault
    VAULT.vault = vault
    return vault


@router.get(
    "/orgs/current/sso",
    operation_id="get_org_sso",
    dependencies=[require_scope(Scope.ORG_READ)],
    summary="Your organisation's single sign-on provider (never its secret)",
    response_model=SsoConfigOut,
    responses=problem_responses(401, 403, 404),
)
async def get_org_sso(
    request: Request, session: Session, principal: Admin, response: Response
) -> SsoConfigOut:
    provider = await _provider(request, session, _org(principal))
    _etag(response, provider.version)
    return _sso_out(request, provider)


@router.put(
    "/orgs/current/sso",
    operation_id="set_org_sso",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Configure your organisation's OpenID Connect provider for single sign-on",
    description=(
        "Staff then sign in at the provider (Google Workspace, Microsoft Entra ID, Okta...) "
        "through `GET /auth/authorize?...&login=sso`. Register `redirect_uri` of the answer "
        "at the provider. The client secret is write-only and sealed at rest; omit it to keep "
        "the one stored. A verified email of the provider signs in the person of this "
        "organisation with that email; an unknown one is refused unless `create_people`. "
        "Send `If-Match` with the ETag to avoid lost updates."
    ),
    response_model=SsoConfigOut,
    responses=problem_responses(401, 403, 412, 422),
)
async def set_org_sso(
    request: Request,
    session: Session,
    principal: Admin,
    body: SsoConfig,
    response: Response,
    if_match: IfMatch = None,
) -> SsoConfigOut:
    org_id = _org(principal)
    settings = request.app.state.settings
    if not valid_issuer(body.issuer, settings.mode):
        raise InvalidSetting(
            "The issuer must be an https URL (plain http only for a loopback address in dev).",
            errors=[{"field": "issuer", "message": "an https URL"}],
        )
    vault = _vault(request)
    try:
        provider: SsoProvider | None = await _provider(request, session, org_id)
    except NotFound:
        provider = None
    if provider is None:
        if if_match is not None and if_match.strip() != "*":
            raise PreconditionFailed("There is no single sign-on to match.")
        if not body.client_secret:
            raise InvalidSetting(
                "client_secret is required the first time.",
                errors=[{"field": "client_secret", "message": "required"}],
            )
        provider = SsoProvider(id=uuid.uuid4(), org_id=org_id, version=1)
        await vault.create_key(session, org_id=org_id, owner_id=provider.id)
        session.add(provider)
        response.status_code = 201
        response.headers["Location"] = "/identity/v1/orgs/current/sso"
    else:
        _check_if_match(if_match, provider.version)
        provider.version = (provider.version or 1) + 1
    provider.issuer = body.issuer
    provider.client_id = body.client_id
    if body.client_secret:
        provider.client_secret = body.client_secret
    provider.allowed_domains = list(body.allowed_domains)
    provider.create_people = body.create_people
    provider.enabled = body.enabled
    await session.flush()
    await session.refresh(provider)
    _etag(response, provider.version)
    return _sso_out(request, provider)


@router.delete(
    "/orgs/current/sso",
    operation_id="delete_org_sso",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Remove your organisation's single sign-on (its secret is destroyed)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404),
)
async def delete_org_sso(request: Request, session: Session, principal: Admin) -> Response:
    provider = await _provider(request, session, _org(principal))
    vault = _vault(request)
    await session.delete(provider)
    await vault.destroy_key(session, provider.id)
    return Response(status_code=204)


# --- the organisation's allowed origins ----------------------------------------------------------


@router.get(
    "/orgs/current/cors",
    operation_id="get_org_cors",
    dependencies=[require_scope(Scope.ORG_READ)],
    summary="Browser origins your organisation allows (CORS)",
    response_model=OrgOriginsOut,
    responses=problem_responses(401, 403),
)
async def get_org_cors(session: Session, principal: Admin, response: Response) -> OrgOriginsOut:
    row = await session.get(OrgCorsOrigins, _org(principal))
    version = row.version if row else 0
    _etag(response, version)
    return OrgOriginsOut(origins=list(row.origins) if row else [], version=version)


@router.put(
    "/orgs/current/cors",
    operation_id="set_org_cors",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Set the browser origins your organisation allows (CORS)",
    description=(
        "Replaces the list. A browser page on one of these origins may call the API with a "
        "token of this organisation; each client may add its own (`/clients/{id}/browser`). "
        "Origins are `scheme://host[:port]`, https (plain http only for localhost)."
    ),
    response_model=OrgOriginsOut,
    responses=problem_responses(401, 403, 412, 422),
)
async def set_org_cors(
    request: Request,
    session: Session,
    principal: Admin,
    body: OrgOrigins,
    response: Response,
    if_match: IfMatch = None,
) -> OrgOriginsOut:
    org_id = _org(principal)
    row = await session.get(OrgCorsOrigins, org_id)
    clock = request.app.state.clock
    if row is None:
        _check_if_match(if_match, 0)
        row = OrgCorsOrigins(org_id=org_id, origins=[], version=0, updated_at=clock.now())
        session.add(row)
    else:
        _check_if_match(if_match, row.version)
    row.origins = list(body.origins)
    row.version = (row.version or 0) + 1
    row.updated_at = clock.now()
    await session.flush()
    _origins_changed(request)
    _etag(response, row.version)
    return OrgOriginsOut(origins=list(row.origins), version=row.version)
