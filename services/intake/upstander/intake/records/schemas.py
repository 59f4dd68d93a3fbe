"""Request and response shapes of private records."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from upstander.intake.forms.schemas import SLUG_PATTERN, Key, Language
from upstander.intake.models import ReportMode
from upstander.intake.reports.schemas import (
    MAX_PEOPLE,
    PersonInvolved,
    ReporterContact,
    ReportSubmitted,
    Witness,
)
from upstander.kit.schemas import RequestModel

TEXT_MAX = 20_000
MAX_FILES = 5
# Base64 of the largest attachment the settings allow is checked by the service; this only
# stops absurd bodies early.
DATA_MAX = 20 * 1024 * 1024

_CODE = Field(
    min_length=16,
    max_length=64,
    description="The record code shown when the record was made. Never put it in a URL.",
    examples=["R7QW2-9XMDA-4RT0P-ZZ81C"],
)
_SHA256_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_ORG = Field(pattern=SLUG_PATTERN, max_length=63, examples=["demo"])


class RecordFileIn(RequestModel):
    filename: str = Field(min_length=1, max_length=255, examples=["message.png"])
    content_type: str = Field(min_length=1, max_length=100, examples=["image/png"])
    data_base64: str = Field(min_length=1, max_length=DATA_MAX, description="The file, base64.")


class RecordEntryIn(RequestModel):
    """What happened, when and where, as the reporter writes it down."""

    text: str = Field(min_length=1, max_length=TEXT_MAX, examples=["What happened today."])
    occurred_at: date | None = Field(default=None, examples=["2026-11-20"])
    location: str | None = Field(default=None, max_length=500, examples=["Field office"])
    attachments: list[RecordFileIn] = Field(default_factory=list, max_length=MAX_FILES)


class RecordCreateIn(RequestModel):
    org: str = _ORG
    entry: RecordEntryIn

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "org": "demo",
                    "entry": {
                        "text": "What happened today, in my words.",
                        "occurred_at": "2026-11-20",
                        "location": "Field office",
                    },
                }
            ]
        }
    )


class RecordCodeIn(RequestModel):
    org: str = _ORG
    record_code: str = _CODE


class RecordAddIn(RecordCodeIn):
    entry: RecordEntryIn


class RecordToReportIn(RecordCodeIn):
    """Turn the record into a report: the entries become its description (each with its
    signed time), their files its attachments, and the report carries the first entry's
    signed time (`recorded_at`). The record stays until you delete it."""

    mode: ReportMode = Field(examples=["anonymous"])
    reporter: ReporterContact | None = Field(
        default=None, description="Confidential reports only (required there)."
    )
    categories: list[Key] = Field(default_factory=list, max_length=50)
    people_involved: list[PersonInvolved] = Field(default_factory=list, max_length=MAX_PEOPLE)
    witnesses: list[Witness] = Field(default_factory=list, max_length=MAX_PEOPLE)
    desired_outcome: str | None = Field(default=None, max_length=5_000)
    excluded_person_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_PEOPLE)
    language: Language = Language.EN


class EntryProof(BaseModel):
    """A signed time proof: `proof` is the statement and its Ed25519 signature; `document`
    (base64) the exact bytes whose SHA-256 it signs. Check it with the key at
    `GET /intake/v1/records/signing-key`, offline or at `POST /intake/v1/records/proofs/verify`."""

    entry_id: uuid.UUID
    proof: dict[str, Any] = Field(
        examples=[
            {
                "v": 1,
                "type": "upstander.record.entry",
                "record_id": "5f0c1e2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
                "entry_id": "6a1d2e3f-4b5c-4d6e-8f70-8192a3b4c5d6",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "time": "2026-11-30T10:21:07+00:00",
                "kid": "3f2a9c1b0d4e5f67",
                "alg": "EdDSA",
                "signature": "base64url",
            }
        ]
    )
    document: str = Field(description="The signed document, base64.")


class RecordCreated(BaseModel):
    record_id: uuid.UUID
    record_code: str = Field(
        description="Shown this once: it alone opens the record. It cannot be recovered.",
        examples=["R7QW2-9XMDA-4RT0P-ZZ81C"],
    )
    entry: EntryProof
    message: str


class RecordFileOut(BaseModel):
    filename: str
    content_type: str
    size: int
    sha256: str
    data_base64: str


class RecordEntryOut(BaseModel):
    entry_id: uuid.UUID
    written_at: datetime = Field(description="The signed time of this entry.")
    text: str
    occurred_at: date | None = None
    location: str | None = None
    attachments: list[RecordFileOut] = Field(default_factory=list)
    proof: EntryProof


class RecordOut(BaseModel):
    record_id: uuid.UUID
    entries: list[RecordEntryOut]


class RecordProofs(BaseModel):
    record_id: uuid.UUID
    public_key: dict[str, str] = Field(description="The signing key (JWK, Ed25519).")
    proofs: list[EntryProof]


class RecordReported(ReportSubmitted):
    recorded_at: datetime = Field(description="The first entry's signed time.")


class SigningKeyOut(BaseModel):
    jwk: dict[str, str] = Field(
        examples=[
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "kid": "3f2a9c1b0d4e5f67",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "use": "sig",
            }
        ]
    )
    pem: str


class VerifyProofIn(RequestModel):
    proof: dict[str, Any] = Field(description="The proof as downloaded (with `signature`).")
    document: str = Field(max_length=DATA_MAX * 2, description="The document, base64.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "proof": {
                        "v": 1,
                        "type": "upstander.record.entry",
                        "record_id": "5f0c1e2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
                        "entry_id": "6a1d2e3f-4b5c-4d6e-8f70-8192a3b4c5d6",
                        "sha256": _SHA256_EXAMPLE,
                        "time": "2026-11-30T10:21:07+00:00",
                        "kid": "3f2a9c1b0d4e5f67",
                        "alg": "EdDSA",
                        "signature": "base64url",
                    },
                    "document": "eyJhdHRhY2htZW50cyI6W10sLi4ufQ==",
                }
            ]
        }
    )


class VerifyProofOut(BaseModel):
    valid: bool
