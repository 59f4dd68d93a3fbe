"""Request and response models of the preferences API."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from pydantic import Field

from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.notify.rules.defaults import NoticeChannel

Kind = Literal["case", "training", "policy"]


class QuietHours(RequestModel):
    start: time = Field(examples=["22:00"], description="Local time quiet hours begin.")
    end: time = Field(examples=["07:00"], description="Local time they end (may be next day).")
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Madrid"])


class PreferencesIn(RequestModel):
    channels: dict[Kind, list[NoticeChannel]] = Field(
        default_factory=dict,
        examples=[{"case": ["inbox"], "training": ["inbox", "email"], "policy": ["inbox"]}],
        description="Channels per kind of notice; a kind left out keeps every channel.",
    )
    quiet_hours: QuietHours | None = Field(
        None, description="Non-urgent email waits until they end; the inbox is immediate."
    )
    language: Literal["en", "es"] | None = Field(
        None, description="Language of your notices; null follows the directory."
    )


class QuietHoursOut(ResponseModel):
    start: str = Field(examples=["22:00"])
    end: str = Field(examples=["07:00"])
    timezone: str = Field(examples=["Europe/Madrid"])


class PreferencesOut(ResponseModel):
    channels: dict[str, list[str]]
    quiet_hours: QuietHoursOut | None
    language: str | None
    mandatory: dict[str, list[str]] = Field(
        examples=[{"case": ["inbox"]}],
        description="Kinds and channels your role always receives, whatever you choose.",
    )
    updated_at: datetime | None = None
