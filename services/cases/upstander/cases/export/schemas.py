"""Response shapes of case exports: the published export keys and a verification's answer."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from upstander.kit.schemas import ResponseModel

_KID = "kqV3ZQ2mX1bq6w1l3Vt0r6vYv2b9xj8c3i4n5o6p7q8"
_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"


class ExportKeyOut(ResponseModel):
    """An Ed25519 public key (RFC 8037 OKP JWK) that export bundles are signed with."""

    kty: Literal["OKP"] = Field(examples=["OKP"])
    crv: Literal["Ed25519"] = Field(examples=["Ed25519"])
    x: str = Field(description="The raw public key, base64url.", examples=[_X])
    kid: str = Field(description="The `key_id` a bundle's manifest names.", examples=[_KID])
    use: Literal["sig"] = Field(examples=["sig"])
    alg: Literal["EdDSA"] = Field(examples=["EdDSA"])


class ExportKeySet(ResponseModel):
    """A JWK set (RFC 7517): the current export key first, then retired ones."""

    keys: list[ExportKeyOut] = Field(max_length=100)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": _X,
                            "kid": _KID,
                            "use": "sig",
                            "alg": "EdDSA",
                        }
                    ]
                }
            ]
        }
    )


class VerificationProblem(ResponseModel):
    """Why a bundle is not valid."""

    code: str = Field(
        description=(
            "`not_a_bundle`, `manifest_missing`, `manifest_invalid`, `signature_missing`, "
            "`signature_invalid`, `unknown_key`, `member_missing`, `member_modified`, "
            "`member_corrupt`, `member_unlisted`, `duplicate_member`, `too_large`."
        ),
        examples=["member_modified"],
    )
    path: str | None = Field(
        default=None, description="The bundle member concerned.", examples=["messages.json"]
    )
    detail: str = Field(examples=["Its SHA-256 differs from the manifest's."])


class VerificationOut(ResponseModel):
    """Whether a bundle is exactly what the deployment signed. The case fields come from the
    manifest and are only to be trusted when `valid` is true."""

    valid: bool = Field(examples=[True])
    problems: list[VerificationProblem] = Field(default_factory=list, examples=[[]])
    case_id: str | None = Field(default=None, examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    case_number: str | None = Field(default=None, examples=["DEMO-2026-0001"])
    export_id: str | None = Field(default=None, examples=["0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"])
    exported_at: str | None = Field(default=None, examples=["2026-11-24T10:02:00+00:00"])
    key_id: str | None = Field(default=None, examples=[_KID])

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "valid": False,
                    "problems": [
                        {
                            "code": "member_modified",
                            "path": "messages.json",
                            "detail": "Its SHA-256 differs from the manifest's.",
                        }
                    ],
                    "case_id": "5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77",
                    "case_number": "DEMO-2026-0001",
                    "export_id": "0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e",
                    "exported_at": "2026-11-24T10:02:00+00:00",
                    "key_id": _KID,
                }
            ]
        }
    )
