"""The tables of the matching escrow and of private records (docs/escrow.md). Imported by
`upstander.intake.models` so the service's metadata holds them.

Nothing here says who is named or who reports: identifiers are keyed blind indexes (HMAC
under `escrow_index_key`, which is not in the database); what the reporter wrote is sealed
under the entry's own data key; times a reporter caused are kept to the hour."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.intake.models import Model
from upstander.kit.crypto import EncryptedBytes, EncryptedJSON
from upstander.kit.db import IdMixin, OrgMixin, UTCDateTime


class EscrowStatus(StrEnum):
    WAITING = "waiting"
    MATCHED = "matched"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class EscrowEntry(IdMixin, OrgMixin, Model):
    """A report held in escrow. Its id is the id the report will have once released, so the
    reporter's token (from the receipt code) follows it from escrow to case.

    `reporter_index` is a blind index of who reports (their staff id, or their contact), only
    to keep one reporter from matching themselves; `match_id` groups entries that matched."""

    __tablename__ = "escrow_entries"
    __encryption_owner__ = "id"

    status: Mapped[str] = mapped_column(String(16), default=EscrowStatus.WAITING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the hour
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    match_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    reporter_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The receipt code (as for reports): HMAC lookup key and slow hash, never the code. Moved
    # to the report when the entry is released.
    receipt_lookup: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    receipt_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The report as written, the identifiers as given, who reports (if identified); None once
    # the entry's data key is destroyed (withdrawn, expired, released).
    content: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(Model.__vault_slot__, "escrow.content"), nullable=True
    )


class EscrowIdentifier(IdMixin, OrgMixin, Model):
    """One blind index of one normalised identifier an entry names."""

    __tablename__ = "escrow_identifiers"
    __table_args__ = (Index("ix_escrow_identifiers_org_id_blind_index", "org_id", "blind_index"),)

    entry_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("escrow_entries.id", ondelete="CASCADE"), index=True
    )
    blind_index: Mapped[str] = mapped_column(String(64))


class EscrowAlias(OrgMixin, Model):
    """That a work email (its blind index) belongs to a directory person (theirs), learnt
    from the directory's person events, so an email and a person id match."""

    __tablename__ = "escrow_aliases"

    blind_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_index: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class EscrowSettings(Model):
    """An organisation's escrow rules: how many independent reporters make a match, and how
    long an entry waits."""

    __tablename__ = "escrow_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    threshold: Mapped[int] = mapped_column(Integer, default=2)
    expiry_days: Mapped[int] = mapped_column(Integer, default=365)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PrivateRecord(IdMixin, OrgMixin, Model):
    """A reporter's private record. Its data key is wrapped by a key derived from the record
    code (scrypt), never by the deployment's: without the code nobody can read it.
    `record_lookup` (HMAC of the code) finds it; the code itself is never stored."""

    __tablename__ = "private_records"

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the hour
    record_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    kdf: Mapped[str] = mapped_column(String(200))  # "scrypt$n$r$p$salt_b64"
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


class PrivateRecordEntry(IdMixin, OrgMixin, Model):
    """One addition to a private record: sealed twice, under the record's code-wrapped key
    and then under the deployment's vault (its data key owned by the record), so destroying
    either shreds it."""

    __tablename__ = "private_record_entries"
    __encryption_owner__ = "record_id"

    record_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("private_records.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the hour
    content: Mapped[bytes | None] = mapped_column(
        EncryptedBytes(Model.__vault_slot__, "record.entry"), nullable=True
    )
