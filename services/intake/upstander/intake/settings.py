"""The intake service's settings: the kit's, plus its own database and port."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from upstander.kit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "intake"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/intake.db",
        validation_alias=AliasChoices("UPSTANDER_INTAKE_DATABASE_URL", "database_url"),
    )
    port: int = Field(8001, validation_alias=AliasChoices("UPSTANDER_INTAKE_PORT", "port"))
