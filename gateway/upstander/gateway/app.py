"""The gateway application: identity and token issuing on the kit's service factory."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from upstander.gateway.auth import passwords
from upstander.gateway.auth.api import oauth_router
from upstander.gateway.auth.api import router as auth_router
from upstander.gateway.auth.authorize import router as authorize_router
from upstander.gateway.auth.keys import KeyStore
from upstander.gateway.auth.lrs_basic import install_lrs_basic
from upstander.gateway.auth.oauth import document_oauth_errors
from upstander.gateway.auth.receipt import router as receipt_router
from upstander.gateway.auth.revocation import DirectoryRevocationCheck
from upstander.gateway.auth.sessions import install_revocation_check, start_revoked_tokens
from upstander.gateway.auth.sso import router as sso_router
from upstander.gateway.auth.sso import start_sso, stop_sso
from upstander.gateway.auth.tokens import TokenIssuer
from upstander.gateway.auth.web_api import router as web_settings_router
from upstander.gateway.bootstrap import bootstrap_demo, ensure_service_clients
from upstander.gateway.edge import install_edge, stop_rate_limits
from upstander.gateway.events import start_directory_events
from upstander.gateway.identity.api import router as identity_router
from upstander.gateway.identity.orgs import pages as invite_pages
from upstander.gateway.identity.orgs import router as orgs_router
from upstander.gateway.identity.orgs import start_operator_client
from upstander.gateway.identity.people_changes_api import router as people_changes_router
from upstander.gateway.models import IdempotencyKey, Inbox, Model, Outbox
from upstander.gateway.proxy import start_upstreams, stop_upstreams
from upstander.gateway.scim.api import router as scim_router
from upstander.gateway.settings import Settings
from upstander.gateway.web import router as reporter_page_router
from upstander.gateway.web.branding import api as branding_router
from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.auth import TokenVerifier
from upstander.kit.clock import Clock
from upstander.kit.http import DEFAULT_CONTENT_TYPES

# The LRS takes statements with attachments and documents of any media type (xAPI 1.0.3
# §2.2): under its prefix every type passes the gateway and training answers for it.
XAPI_CONTENT_TYPES_UNDER: dict[str, tuple[str, ...]] = {"/training/v1/xapi": ("*/*",)}

log = logging.getLogger("upstander.gateway")

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


async def start_keys(app: FastAPI) -> None:
    """Load the signing keys; the gateway verifies tokens with them locally (no HTTP to itself)."""
    settings: Settings = app.state.settings
    keys = KeyStore(app.state.sessionmaker, settings, app.state.clock)
    await keys.load()
    app.state.key_store = keys
    app.state.token_issuer = TokenIssuer(keys, settings, app.state.clock)
    app.state.token_verifier = TokenVerifier(
        keys,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        clock=app.state.clock,
        # Its own routes refuse a token once its subject's access changed, read from the
        # directory itself (docs/threat-model.md, "Tokens die with access").
        revocation_check=DirectoryRevocationCheck(app.state.sessionmaker),
    )


class LocalServiceTokens:
    """The relay's token source in the gateway: signed locally, fresh for every delivery."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer

    async def token(self) -> str:
        return await self.issuer.issue_gateway_service_token()

    def invalidate(self) -> None:
        pass


async def start_local_service_tokens(app: FastAPI) -> None:
    app.state.relay.tokens = LocalServiceTokens(app.state.token_issuer)


async def start_service_clients(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session:
        try:
            await ensure_service_clients(session, app.state.settings)
            await session.commit()
        except IntegrityError:
            # Another replica created them at the same moment; theirs are as good as ours.
            await session.rollback()


async def start_demo(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session:
        try:
            credentials = await bootstrap_demo(session, app.state.settings)
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return
    if credentials is not None:
        # The one print in the platform: dev-mode demo credentials for the person at the console.
        print(credentials.banner(), flush=True)


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or Settings()
    passwords.configure(
        time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib
    )
    spec = ServiceSpec(
        name="gateway",
        title="Upstander API",
        description=(
            "Report, handle and prevent harassment. Sign in at `POST /auth/token`; "
            "tokens are EdDSA JWTs verifiable with `/.well-known/jwks.json`."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        routers=[
            auth_router,
            oauth_router,
            receipt_router,
            people_changes_router,  # before identity's `/people/{person_id}`
            identity_router,
            orgs_router,
            invite_pages,
            scim_router,
            reporter_page_router,
            branding_router,
            authorize_router,
            sso_router,
            web_settings_router,
        ],
        on_startup=[
            start_keys,
            start_revoked_tokens,
            start_local_service_tokens,
            start_directory_events,
            start_service_clients,
            start_operator_client,
            start_demo,
            start_upstreams,
            start_sso,
        ],
        on_shutdown=[stop_upstreams, stop_rate_limits, stop_sso],
        event_tables=(Outbox, Inbox),
        idempotency_table=IdempotencyKey,
        max_body_bytes=settings.max_body_bytes,
        # The public edge: one source may hold only so many requests with bodies arriving.
        slow_requests_per_source=settings.slow_requests_per_source,
        # What any service takes passes the gateway; each service refuses what it doesn't.
        content_types=(*DEFAULT_CONTENT_TYPES, "text/csv"),
        content_types_under=XAPI_CONTENT_TYPES_UNDER,
        openapi_tags=[
            {"name": "auth", "description": "Tokens and signing keys."},
            {"name": "identity", "description": "Your organisation, its people and API clients."},
            {
                "name": "scim",
                "description": "SCIM 2.0 provisioning of people and role groups (docs/scim.md).",
            },
        ],
    )
    app = create_service_app(settings, spec, transport=transport, clock=clock)
    # Last, so that the gateway's own routes win over the proxy's catch-all.
    install_edge(app, settings, transport=transport, clock=clock)
    # Revoked access tokens (RFC 7009, logout) are refused here, for every route and service.
    install_revocation_check(app)
    # The LRS's HTTP Basic key/secret (an API client's id and secret) → that client's token.
    install_lrs_basic(app)
    document_oauth_errors(app)
    return app
