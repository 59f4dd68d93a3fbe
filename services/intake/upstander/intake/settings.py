"""The intake service's settings: the kit's, plus its database, port, receipt key and the limits
on attachments."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from upstander.kit.settings import DEV_RECEIPT_KEY, KitSettings

MIB = 1024 * 1024

# Development-only secrets of the escrow and private records (docs/escrow.md): public, so
# production refuses them. The signing key is an Ed25519 seed (32 bytes, base64).
DEV_ESCROW_INDEX_KEY = "dev-escrow-blind-index-key-change-me"
DEV_RECORD_SIGNING_KEY = "ZGV2LW9ubHktcmVjb3JkLXNpZ25pbmcta2V5LTMyYnk="

DEFAULT_ATTACHMENT_TYPES = [
    "image/jpeg",
    "image/png",
    "application/pdf",
    "text/plain",
    "audio/mpeg",
    "audio/mp4",
    "video/mp4",
]


class Settings(KitSettings):
    service_name: ClassVar[str] = "intake"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/intake.db",
        validation_alias="UPSTANDER_INTAKE_DATABASE_URL",
    )
    port: int = Field(8001, validation_alias="UPSTANDER_INTAKE_PORT")

    # Keys the receipt-code lookup (HMAC-SHA256); the gateway holds the same key
    # (UPSTANDER_RECEIPT_KEY). Production refuses the development default.
    receipt_key: str = DEV_RECEIPT_KEY

    # The matching escrow (docs/escrow.md): the key of the identifiers' blind indexes (never
    # in the database), new entries an organisation takes a day, and an entry's default life.
    escrow_index_key: str = DEV_ESCROW_INDEX_KEY
    escrow_max_entries_per_org_per_day: int = Field(200, ge=1)
    escrow_default_expiry_days: int = Field(365, ge=1, le=3650)
    # Private records: the Ed25519 seed that signs their time proofs (published at
    # `GET /intake/v1/records/signing-key`).
    record_signing_key: str = DEV_RECORD_SIGNING_KEY

    # Attachments: per file, per report, and the content types a reporter may send.
    max_attachment_bytes: int = Field(10 * MIB, gt=0)
    max_attachments_per_report: int = Field(5, ge=0, le=50)
    attachment_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ATTACHMENT_TYPES))

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: a report with every attachment it may carry, plus room
        for the report itself and the multipart framing."""
        return self.max_attachments_per_report * self.max_attachment_bytes + MIB

    def default_secrets(self) -> dict[str, str]:
        return {
            **super().default_secrets(),
            "receipt_key": DEV_RECEIPT_KEY,
            "escrow_index_key": DEV_ESCROW_INDEX_KEY,
            "record_signing_key": DEV_RECORD_SIGNING_KEY,
        }
