"""The training service's settings: the kit's, plus its own database."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from upstander.kit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "training"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/training.db",
        validation_alias="UPSTANDER_TRAINING_DATABASE_URL",
    )

    # Reminders: "due soon" this many days before a deadline; the scheduler runs hourly in
    # the background unless turned off (tests call `app.state.reminders.run_once()`).
    reminder_window_days: int = 14
    reminders_background: bool = True
    reminders_interval_seconds: float = 3600.0
    # The first pass waits a little after start, so a restart loop cannot flood reminders
    # and short-lived processes (tests, one-off commands) send none.
    reminders_initial_delay_seconds: float = 60.0
    # xAPI: statements per GET page at most (`limit=0` asks for this many).
    xapi_max_limit: int = 500
