"""Request and response shapes of an organisation's deadline settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from upstander.cases.models import JurisdictionPreset
from upstander.kit.schemas import RequestModel, ResponseModel


class SettingsIn(RequestModel):
    """The preset sets the legal ceiling (`eu_directive`: 7 days, 3 months); an organisation
    may only shorten it."""

    jurisdiction_preset: JurisdictionPreset = Field(
        default=JurisdictionPreset.EU_DIRECTIVE, examples=["eu_directive"]
    )
    acknowledge_days: int | None = Field(default=None, ge=1, le=7, examples=[5])
    feedback_months: int | None = Field(default=None, ge=1, le=3, examples=[2])
    checkin_offsets_days: list[Annotated[int, Field(ge=1, le=3650)]] | None = Field(
        default=None,
        max_length=10,
        description=(
            "Days after closing on which the reporter is asked about retaliation "
            "(default `[30, 90]`; `[]` switches check-ins off). Absent keeps the current."
        ),
        examples=[[30, 90]],
    )
    retention_days_after_close: int | None = Field(
        default=None,
        ge=365,
        le=36_500,
        description=(
            "Days a finished case is kept after closing before it is deleted (default 1461, "
            "4 years: California Gov Code 12946, the longest period that applies; never less "
            "than the EEOC's 1 year). Absent keeps the current."
        ),
        examples=[1461],
    )


class SettingsOut(ResponseModel):
    jurisdiction_preset: JurisdictionPreset = Field(examples=["eu_directive"])
    acknowledge_days: int = Field(examples=[7])
    feedback_months: int = Field(examples=[3])
    checkin_offsets_days: list[int] = Field(examples=[[30, 90]])
    retention_days_after_close: int = Field(examples=[1461])
    updated_at: datetime | None = Field(default=None, examples=[None])
