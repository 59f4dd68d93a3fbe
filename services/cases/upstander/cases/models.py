"""Every table the cases service owns, in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.crypto import EncryptedJSON, EncryptedText, VaultSlot, data_key_model
from upstander.kit.db import Base, IdMixin, OrgMixin, TimestampMixin, UTCDateTime, make_metadata
from upstander.kit.events import event_tables


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()
    # Where the encrypted column types find this service's Vault (attached at startup).
    __vault_slot__ = VaultSlot("cases")


Outbox, Inbox = event_tables(Model)
DataKey = data_key_model(Model)


class CaseStatus(StrEnum):
    NEW = "new"
    TRIAGE = "triage"
    INVESTIGATING = "investigating"
    DECISION = "decision"
    CLOSED = "closed"
    REFERRED = "referred"
    DISMISSED = "dismissed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ReporterMode(StrEnum):
    ANONYMOUS = "anonymous"
    CONFIDENTIAL = "confidential"
    IDENTIFIED = "identified"


class RestrictionReason(StrEnum):
    INVOLVED = "involved"  # named in the report as involved
    EXCLUDED = "excluded"  # the reporter asked that they never see the case
    CHAIN = "chain"  # above an involved person in the reporting chain


class AuthorKind(StrEnum):
    REPORTER = "reporter"
    HANDLER = "handler"
    SYSTEM = "system"


def _enum(kind: type[StrEnum], name: str) -> Enum:
    # Stored as VARCHAR of the values (no native PostgreSQL enum): adding a state later is a
    # code change, not a type migration.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda members: [member.value for member in members],
    )


class Case(IdMixin, OrgMixin, TimestampMixin, Model):
    """A case file, opened exactly once from a report."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("org_id", "number", name="uq_cases_org_id_number"),
        UniqueConstraint("org_id", "report_id", name="uq_cases_org_id_report_id"),
        Index("ix_cases_org_id_created_at_id", "org_id", "created_at", "id"),
        Index("ix_cases_org_id_status_created_at_id", "org_id", "status", "created_at", "id"),
    )

    # No single-column index: the composite indexes above lead with org_id.
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus, "case_status"), default=CaseStatus.NEW
    )
    severity: Mapped[Severity | None] = mapped_column(
        _enum(Severity, "case_severity"), nullable=True
    )
    priority: Mapped[Priority] = mapped_column(
        _enum(Priority, "case_priority"), default=Priority.NORMAL
    )
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reporter_mode: Mapped[ReporterMode] = mapped_column(
        _enum(ReporterMode, "reporter_mode"), default=ReporterMode.ANONYMOUS
    )
    # Only for identified reports: the reporter's directory id.
    reporter_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledge_by: Mapped[datetime] = mapped_column(UTCDateTime)
    feedback_by: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The ETag; SQLAlchemy bumps it on every UPDATE and checks it (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class CaseCounter(Model):
    """The last case number given per organisation and year. Incremented with an UPSERT in the
    transaction that opens the case, so numbers are gap-free and never handed out twice."""

    __tablename__ = "case_counters"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


# ----------------------------------------------------------------------------- the report


class CaseReport(IdMixin, OrgMixin, TimestampMixin, Model):
    """What the reporter told us, sealed under the case's data key: description, people
    involved, witnesses, desired outcome, reporter contact, language. Kept apart from `cases`
    so listing cases never decrypts (or even loads) report content."""

    __tablename__ = "case_reports"
    __encryption_owner__ = "case_id"

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), unique=True
    )
    # None once the case's data key is destroyed (crypto-shredded).
    content: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(Model.__vault_slot__, "case_report.content"), nullable=True
    )


class CaseAttachment(IdMixin, OrgMixin, TimestampMixin, Model):
    """Metadata of a file the reporter attached (the file itself stays with intake). The
    filename can name people, so it is sealed under the case's data key."""

    __tablename__ = "case_attachments"
    __encryption_owner__ = "case_id"
    __table_args__ = (UniqueConstraint("case_id", "attachment_id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    attachment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    filename: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_attachment.filename"), nullable=True
    )
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)


class CaseRestriction(IdMixin, OrgMixin, Model):
    """A person who must never see the case nor hear about it, whatever their role. Rows are
    only ever added: a case once hidden from someone stays hidden."""

    __tablename__ = "case_restrictions"
    # Leads with (case_id, person_id): the NOT EXISTS of every visibility check.
    __table_args__ = (UniqueConstraint("case_id", "person_id", "reason"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reason: Mapped[RestrictionReason] = mapped_column(
        _enum(RestrictionReason, "restriction_reason")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- conversation


class Message(IdMixin, OrgMixin, TimestampMixin, Model):
    """One message of the two-way conversation between the reporter and the case's handlers,
    sealed under the case's data key."""

    __tablename__ = "messages"
    __encryption_owner__ = "case_id"
    __table_args__ = (Index("ix_messages_case_id_created_at_id", "case_id", "created_at", "id"),)

    # No single-column index: the composite one leads with it.
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    author_kind: Mapped[AuthorKind] = mapped_column(_enum(AuthorKind, "author_kind"))
    # The handler who wrote it (None for the reporter, the system, or an API client).
    author_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    body: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "message.body"), nullable=True
    )


# ----------------------------------------------------------------------------- directory


class Org(TimestampMixin, Model):
    """Projection of the gateway's organisations (`upstander.org.*`): the slug numbers cases."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the org id
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(OrgMixin, TimestampMixin, Model):
    """Projection of the gateway's staff directory (`upstander.person.*`): reporting lines for
    the chain of command. Email, name and title are sealed under the person's own data key."""

    __tablename__ = "people"
    __encryption_owner__ = "id"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the person id
    email: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.email"), nullable=True
    )
    name: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.name"), nullable=True
    )
    title: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.title"), nullable=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    is_leadership: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
