"""The training service's settings: the kit's, plus its own database."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from upstander.kit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "training"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/training.db",
        validation_alias=AliasChoices("UPSTANDER_TRAINING_DATABASE_URL", "database_url"),
    )
