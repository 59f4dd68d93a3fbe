"""Request shape of a legal hold."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from upstander.kit.schemas import RequestModel


class LegalHoldIn(RequestModel):
    on: bool = Field(description="Put the hold on (true) or lift it (false).", examples=[True])
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=2_000,
        description="Required to put a hold on; sealed under the case's key.",
        examples=["EEOC charge filed; keep until it is resolved."],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"on": True, "reason": "EEOC charge filed; keep until resolved."}]
        }
    )
