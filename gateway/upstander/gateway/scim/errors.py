"""SCIM error responses (RFC 7644 3.12): `application/scim+json` bodies with the Error schema,
a string `status` and, where one applies, a `scimType`. The SCIM routes answer every refusal
this way (auth included), since identity providers parse nothing else."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimResponse(JSONResponse):
    media_type = SCIM_JSON


class ScimError(Exception):
    """A SCIM refusal. `scim_type` is one of RFC 7644's (invalidFilter, tooMany, uniqueness,
    mutability, invalidSyntax, invalidPath, noTarget, invalidValue, invalidVers, sensitive)."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def error_response(error: ScimError) -> ScimResponse:
    return ScimResponse(
        error_body(error.status, error.detail, error.scim_type),
        status_code=error.status,
        headers=error.headers,
    )


def error_schema() -> dict[str, Any]:
    """The OpenAPI schema of a SCIM error body."""
    return {
        "type": "object",
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "examples": ["409"]},
            "scimType": {"type": "string", "examples": ["uniqueness"]},
            "detail": {"type": "string"},
        },
        "required": ["schemas", "status"],
    }


def scim_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": "A SCIM error (RFC 7644 3.12).",
            "content": {SCIM_JSON: {"schema": error_schema()}},
        }
        for status in statuses
    }
