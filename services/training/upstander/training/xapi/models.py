"""The LRS's own tables beside the statements (`upstander.training.models.XapiStatement`):
documents (State, Activity Profile, Agent Profile), attachment contents, the agents and
activities each statement mentions (for `agent`/`activity` filters and `related_*`), and the
activities' latest definitions (the Activities resource). Every row carries its org."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.db import IdMixin, OrgMixin, TimestampMixin, UTCDateTime
from upstander.training.models import Model


class XapiDocument(IdMixin, OrgMixin, TimestampMixin, Model):
    """One document of the State, Activity Profile or Agent Profile resource.

    `key_hash` names the document (kind, activity, agent, registration, document id) and
    `scope_hash` the set it belongs to (the same without the document id), both SHA-256 hex, so
    that long IRIs never sit in an index."""

    __tablename__ = "xapi_documents"
    __table_args__ = (
        UniqueConstraint("org_id", "key_hash", name="uq_xapi_documents_org_id_key_hash"),
        Index("ix_xapi_documents_org_id_scope_hash", "org_id", "scope_hash"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    scope_hash: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    registration: Mapped[str | None] = mapped_column(String(36), nullable=True)
    document_id: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    stored: Mapped[datetime] = mapped_column(UTCDateTime)


class XapiAttachment(IdMixin, OrgMixin, TimestampMixin, Model):
    """The content of an attachment sent with a statement, by its SHA-2 (shared by statements)."""

    __tablename__ = "xapi_attachments"
    __table_args__ = (UniqueConstraint("org_id", "sha2", name="uq_xapi_attachments_org_id_sha2"),)

    sha2: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(255))
    length: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class XapiStatementLink(IdMixin, OrgMixin, Model):
    """An agent or activity a statement mentions: `related` false for the actor or object (the
    plain filters), true for the rest (instructor, team, authority, context activities,
    sub-statement parts: `related_agents` / `related_activities`)."""

    __tablename__ = "xapi_statement_links"
    __table_args__ = (
        Index("ix_xapi_statement_links_lookup", "org_id", "kind", "value_hash"),
        Index("ix_xapi_statement_links_statement", "statement_row"),
    )

    statement_row: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(8))
    value_hash: Mapped[str] = mapped_column(String(64))
    related: Mapped[bool] = mapped_column(Boolean, default=False)


class XapiActivity(IdMixin, OrgMixin, TimestampMixin, Model):
    """An activity's definition as the statements built it up (the Activities resource)."""

    __tablename__ = "xapi_activities"
    __table_args__ = (
        UniqueConstraint("org_id", "key_hash", name="uq_xapi_activities_org_id_key_hash"),
    )

    key_hash: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
