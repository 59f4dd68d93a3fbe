"""The cases service's settings: the kit's, plus its own database and port."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from upstander.kit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "cases"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/cases.db",
        validation_alias="UPSTANDER_CASES_DATABASE_URL",
    )
    port: int = Field(8002, validation_alias="UPSTANDER_CASES_PORT")

    # The deadline scheduler: announce deadlines this long before they fall due, and look
    # every `deadline_scheduler_interval_seconds` (tests switch the loop off and call
    # `app.state.deadlines.run_once()` with a frozen clock).
    deadline_scheduler_background: bool = True
    deadline_scheduler_interval_seconds: float = 300.0
    deadline_warning_hours: float = 48.0
