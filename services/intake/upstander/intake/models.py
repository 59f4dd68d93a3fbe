"""Every table the intake service owns, in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.crypto import EncryptedJSON, EncryptedText, VaultSlot, data_key_model
from upstander.kit.db import Base, IdMixin, OrgMixin, TimestampMixin, UTCDateTime, make_metadata
from upstander.kit.events import event_tables
from upstander.kit.revocation import access_table


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()
    __vault_slot__ = VaultSlot("intake")


# The transactional outbox and the consumer inbox (upstander.kit.events), and the data keys
# that encrypt each report (upstander.kit.crypto): one key per report, shared by its
# attachments, so destroying it shreds the whole report.
Outbox, Inbox = event_tables(Model)
# The latest access change of each person, API client and org the gateway announced: tokens
# signed before it are refused (upstander.kit.revocation).
AccessRecord = access_table(Model)
DataKey = data_key_model(Model)


class ReportingForm(IdMixin, TimestampMixin, Model):
    """One organisation's public reporting form: categories, extra questions and resources.

    A row exists for every organisation intake knows (it is intake's projection of the
    gateway's organisations); `customised` is false while it still carries the platform's
    default form. The JSON columns hold the shapes validated by
    `upstander.intake.forms.schemas` (labels as `{"en": ..., "es": ...}`)."""

    __tablename__ = "reporting_forms"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    org_slug: Mapped[str] = mapped_column(String(63), unique=True)
    org_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # False once the gateway deactivates the organisation: its front door closes.
    org_active: Mapped[bool] = mapped_column(Boolean, default=True)
    customised: Mapped[bool] = mapped_column(Boolean, default=False)
    categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)
    # The ETag; SQLAlchemy bumps it on every UPDATE and checks it (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class ReportMode(StrEnum):
    ANONYMOUS = "anonymous"
    CONFIDENTIAL = "confidential"
    IDENTIFIED = "identified"


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"


class Report(IdMixin, OrgMixin, TimestampMixin, Model):
    """A report as the reporter wrote it. Everything they wrote (narrative, people, contact
    details, language) is in `content`, encrypted under the report's own data key; the plain
    columns say nothing about anyone. No client address or user agent is ever stored."""

    __tablename__ = "reports"
    __encryption_owner__ = "id"

    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), default=ReportStatus.SUBMITTED.value)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Receipt codes (anonymous and confidential reports only), never stored themselves:
    # `receipt_lookup` is HMAC-SHA256(receipt_key, code) in hex, to find the report;
    # `receipt_hash` is "scrypt$salt_b64$hash_b64", to verify it slowly.
    receipt_lookup: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    receipt_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # None once the report's data key is destroyed (crypto-shredded).
    content: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(Model.__vault_slot__, "report.content"), nullable=True
    )


class Attachment(IdMixin, OrgMixin, TimestampMixin, Model):
    """A file a reporter attached to their report. The bytes (base64) and the file name (it
    can name people) are encrypted under the report's data key."""

    __tablename__ = "attachments"
    __encryption_owner__ = "report_id"
    __table_args__ = (Index("ix_attachments_report_id_created_at", "report_id", "created_at"),)

    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("reports.id"))
    filename: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "attachment.filename"), nullable=True
    )
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "attachment.content"), nullable=True
    )


class DirectoryPerson(OrgMixin, TimestampMixin, Model):
    """Intake's projection of the gateway's directory (`upstander.person.*`): the organisation
    each person id belongs to, and nothing else (no name, email or role), so that a report
    naming another organisation's people is refused."""

    __tablename__ = "directory_people"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the person id


# The matching escrow and private records (docs/escrow.md): their own module.
from upstander.intake.escrow.models import *  # noqa: E402, F403
