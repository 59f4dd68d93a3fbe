"""Every table the gateway owns, in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.db import (
    Base,
    IdMixin,
    TimestampMixin,
    UTCDateTime,
    make_metadata,
)
from upstander.kit.events import event_tables
from upstander.kit.idempotency import idempotency_table


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


class Org(IdMixin, TimestampMixin, Model):
    """A tenant: one campaign or workplace."""

    __tablename__ = "orgs"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Person(IdMixin, TimestampMixin, Model):
    """A staff member: directory entry, roles, reporting line and (optionally) a password."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("org_id", "email", name="uq_people_org_id_email"),
        Index("ix_people_org_id_created_at_id", "org_id", "created_at", "id"),
        UniqueConstraint("org_id", "external_id", name="uq_people_org_id_external_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)  # stored lowercased
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("people.id", ondelete="SET NULL"), nullable=True, index=True
    )
    is_leadership: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    location: Mapped[str | None] = mapped_column(String(64), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Counts changes to what the person may do (deactivation, roles, organisation, a password
    # an admin set): signed into their tokens, and announced, so every service refuses tokens
    # signed before the last change (upstander.kit.revocation; bumped in events.py).
    access_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    access_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What an identity provider or HR system knows them by (SCIM `externalId`), unique per
    # org, and the enterprise attributes SCIM provisions (docs/scim.md).
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    department: Mapped[str | None] = mapped_column(String(200), nullable=True)
    employee_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # SCIM's `userName` when it is not the email itself, and the `emails` as provisioned
    # (the sign-in `email` is the userName if it is an address, else the primary email).
    scim_user_name: Mapped[str | None] = mapped_column(String(320), nullable=True)
    scim_emails: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # Deleted over SCIM: deactivated like any leaver (records keep them), and no longer a
    # SCIM resource (a GET is 404, RFC 7644 3.6).
    scim_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Attributes the IdP left out or removed that the platform still needs (displayName,
    # preferredLanguage, active, isLeadership): each with the value it then kept or took.
    # SCIM shows such an attribute absent while the person still has that value.
    scim_unset: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ApiClient(IdMixin, TimestampMixin, Model):
    """An OAuth client: an org's integration (`kind="client"`) or a platform service
    (`kind="service"`, no org)."""

    __tablename__ = "api_clients"
    __table_args__ = (Index("ix_api_clients_org_id_created_at_id", "org_id", "created_at", "id"),)

    org_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=True, index=True
    )
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))  # argon2id
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(16), default="client")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # As for people: deactivation, roles or scopes changed (upstander.kit.revocation).
    access_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    access_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The person who registered the client: its tokens carry them as `owner`, and a client
    # never sees more than its owner may (a case hidden from them is hidden from it). None
    # for platform service clients and for rows made before owners were recorded; such an
    # org client sees no case content (services fail closed).
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("people.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # Browser sign-in (auth/authorize.py): a public client (a frontend, a mobile app) keeps no
    # secret and signs people in with the authorization code and PKCE at its registered
    # redirect URIs (matched exactly); `allow_password_grant` lets a first-party tool use the
    # password grant; `allowed_origins` may call the API from a browser (edge/cors.py).
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    allow_password_grant: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class RefreshToken(IdMixin, Model):
    """One refresh token (only its SHA-256 is kept). Tokens rotated from one another share a
    `family_id`; presenting a revoked one revokes the whole family (reuse detection)."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("people.id", ondelete="CASCADE"), nullable=True, index=True
    )
    api_client_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("api_clients.id", ondelete="CASCADE"), nullable=True, index=True
    )
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # The scopes the person narrowed their sign-in to (`scope=` at /auth/token), kept for each
    # refresh; None: not narrowed (their roles decide).
    scope: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class RevokedToken(Model):
    """An access token revoked before it expired (RFC 7009 revocation, logout): its `jti`,
    refused by the gateway until `expires_at`, after which the row may be deleted."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SigningKey(Model):
    """An Ed25519 token-signing key. The private key is stored encrypted (AES-256-GCM under a
    key-encryption key named by `kek_id`); retired keys stay published for a while."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(64))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[str] = mapped_column(String(64))  # base64url raw Ed25519 public key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


__all__ = [
    "ApiClient",
    "Model",
    "Org",
    "Person",
    "RefreshToken",
    "RevokedToken",
    "SigningKey",
]


# Browser sign-in, single sign-on and CORS origins (auth/authorize.py, auth/sso.py).
from upstander.gateway.auth import store as _auth_store  # noqa: E402, F401

# The reporter page's per-organisation branding and framing (web/branding.py).
from upstander.gateway.identity import branding_tables as _branding_tables  # noqa: E402, F401

# The people change feed (identity/people_changes.py).
from upstander.gateway.identity import change_tables as _change_tables  # noqa: E402, F401

# One-time invitations of an organisation's admins (identity/orgs.py).
from upstander.gateway.identity import org_tables as _org_tables  # noqa: E402, F401

# People's external references (identity/external_refs.py).
from upstander.gateway.identity import ref_tables as _ref_tables  # noqa: E402, F401

# SCIM team groups (scim/groups.py).
from upstander.gateway.scim import tables as _scim_tables  # noqa: E402, F401

# The gateway's outbox (directory events) and inbox (it consumes none yet, the kit needs both).
Outbox, Inbox = event_tables(Model)
# Responses stored for `Idempotency-Key` retries (kit.idempotency).
IdempotencyKey = idempotency_table(Model)
