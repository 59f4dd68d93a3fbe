"""Tables of browser sign-in (migration 0007): one-time authorization codes (RFC 6749 §4.1 with
RFC 7636 PKCE), an organisation's own OpenID Connect provider and its sign-ins in flight,
an organisation's allowed CORS origins, and the gateway's data keys (the provider's client
secret is sealed under one, upstander.kit.crypto)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.gateway.models import Model
from upstander.kit.crypto import EncryptedText, VaultSlot, data_key_model
from upstander.kit.db import IdMixin, TimestampMixin, UTCDateTime

# The gateway's vault slot; app startup attaches the vault (auth/sso.py `start_vault`).
VAULT = VaultSlot("gateway")
DataKey = data_key_model(Model)


class AuthorizationCode(Model):
    """A one-time authorization code (only its SHA-256 is kept), bound to the client, the exact
    redirect URI and the PKCE challenge it was asked with; spent once, short-lived. `family_id`:
    the sign-in its exchange started, ended if the code is presented again (RFC 6749 §4.1.2)."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_client_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("api_clients.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    person_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    code_challenge: Mapped[str] = mapped_column(String(128))
    # The scopes the sign-in is narrowed to (space-separated); never empty.
    scope: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # How the person proved who they are: `password` or `sso`.
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


class SsoProvider(IdMixin, TimestampMixin, Model):
    """An organisation's own OpenID Connect provider (Google Workspace, Entra ID, Okta...).
    The client secret is sealed under the provider row's data key."""

    __tablename__ = "sso_providers"
    __encryption_owner__ = "id"

    org_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orgs.id", ondelete="CASCADE"), index=True, unique=True
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str | None] = mapped_column(
        EncryptedText(VAULT, "sso.client_secret"), nullable=True
    )
    # Lower-case email domains whose people may sign in this way; empty: any domain.
    allowed_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Make a person (role `staff`) on their first sign-in, rather than refuse an unknown email.
    create_people: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class SsoLogin(Model):
    """A sign-in at an organisation's provider, from the redirect there until the callback:
    the SHA-256 of its `state`, the nonce the ID token must carry, the SHA-256 of the browser
    binding cookie, and the client's authorization request to answer afterwards. Single use."""

    __tablename__ = "sso_logins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sso_providers.id", ondelete="CASCADE"), index=True
    )
    browser_hash: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OrgCorsOrigins(Model):
    """The browser origins an organisation allows to call the API (besides its clients')."""

    __tablename__ = "org_cors_origins"

    org_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ = [
    "VAULT",
    "AuthorizationCode",
    "DataKey",
    "OrgCorsOrigins",
    "SsoLogin",
    "SsoProvider",
]
