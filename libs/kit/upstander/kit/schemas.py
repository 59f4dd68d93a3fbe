"""Base Pydantic models: requests forbid unknown fields and bound every string."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """Every request body: unknown fields are errors, strings are bounded, whitespace trimmed."""

    model_config = ConfigDict(extra="forbid", str_max_length=20_000, str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
