"""The intake service's settings: the kit's, plus its database, port, receipt key and the limits
on attachments."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from upstander.kit.settings import DEV_RECEIPT_KEY, KitSettings

MIB = 1024 * 1024

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
        return {**super().default_secrets(), "receipt_key": DEV_RECEIPT_KEY}
