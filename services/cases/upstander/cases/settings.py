"""The cases service's settings: the kit's, plus its own database and port."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from upstander.cases.export.bundle import decode_seed, parse_retired_keys
from upstander.kit.settings import KitSettings

# The development export key (a raw Ed25519 seed, base64). Public, since it is in the
# repository: production mode refuses to start with it (see `default_secrets`).
DEV_EXPORT_SIGNING_KEY = "ZGV2LW9ubHktZXhwb3J0LXNpZ25pbmcta2V5LTMyYiE="

MIB = 1024 * 1024

# What a handler may add as evidence: the types a reporter may attach to a report (intake's
# `attachment_types`); the same people open both kinds of file, so they pass the same gate.
DEFAULT_EVIDENCE_TYPES = [
    "image/jpeg",
    "image/png",
    "application/pdf",
    "text/plain",
    "audio/mpeg",
    "audio/mp4",
    "video/mp4",
]


class Settings(KitSettings):
    service_name: ClassVar[str] = "cases"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/cases.db",
        validation_alias="UPSTANDER_CASES_DATABASE_URL",
    )
    port: int = Field(8002, validation_alias="UPSTANDER_CASES_PORT")

    # The deadline scheduler: announce deadlines this long before they fall due, and look
    # every `deadline_scheduler_interval_seconds` (tests switch the loop off and call
    # `app.state.deadlines.run_once()` with a frozen clock).
    deadline_scheduler_background: bool = True
    deadline_scheduler_interval_seconds: float = 300.0
    deadline_warning_hours: float = 48.0

    # Case exports (docs/export.md): the Ed25519 seed that signs every bundle's manifest
    # (base64 of 32 random bytes), its key id (default: the key's RFC 7638 thumbprint), and
    # retired public keys (`kid:base64url-x`, comma separated) still published so that
    # bundles signed before a rotation keep verifying.
    export_signing_key: str = DEV_EXPORT_SIGNING_KEY
    export_signing_key_id: str = Field("", max_length=64)
    export_retired_keys: str = ""

    @field_validator("export_signing_key")
    @classmethod
    def _export_key_is_a_seed(cls, value: str) -> str:
        decode_seed(value)  # refuse a bad key at start, not at the first export
        return value

    @field_validator("export_retired_keys")
    @classmethod
    def _retired_keys_parse(cls, value: str) -> str:
        parse_retired_keys(value)
        return value

    def default_secrets(self) -> dict[str, str]:
        return {**super().default_secrets(), "export_signing_key": DEV_EXPORT_SIGNING_KEY}

    # Evidence files: the largest one (as intake's `max_attachment_bytes`) and the content
    # types accepted; a download is served with its stored type only while it is listed here.
    max_evidence_bytes: int = Field(10 * MIB, gt=0)
    evidence_types: list[str] = Field(default_factory=lambda: list(DEFAULT_EVIDENCE_TYPES))

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: an evidence file of the largest size plus room for its
        description, source and the multipart framing (the kit's default, 10 MiB, would
        refuse a file of exactly `max_evidence_bytes`)."""
        return max(10 * MIB, self.max_evidence_bytes + MIB)
