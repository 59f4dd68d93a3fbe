"""Request and response shapes of an organisation's deadline settings."""

from __future__ import annotations

from datetime import datetime

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


class SettingsOut(ResponseModel):
    jurisdiction_preset: JurisdictionPreset = Field(examples=["eu_directive"])
    acknowledge_days: int = Field(examples=[7])
    feedback_months: int = Field(examples=[3])
    updated_at: datetime | None = Field(default=None, examples=[None])
