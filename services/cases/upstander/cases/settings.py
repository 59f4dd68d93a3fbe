"""The cases service's settings: the kit's, plus its own database and port."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from upstander.kit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "cases"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/cases.db",
        validation_alias="UPSTANDER_CASES_DATABASE_URL",
    )
    port: int = Field(8002, validation_alias="UPSTANDER_CASES_PORT")
