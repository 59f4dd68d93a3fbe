"""The notify service's settings: the kit's, plus its database, mail and webhook delivery."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from upstander.kit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "notify"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/notify.db",
        validation_alias="UPSTANDER_NOTIFY_DATABASE_URL",
    )

    # Mail. Without an SMTP host (dev) every message is written as an .eml file to mail_dir.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = 30.0
    mail_from: str = "Upstander <no-reply@upstander.local>"
    mail_dir: str = "var/mail"
    # Where people open the web app; links in messages point there.
    app_base_url: str = "http://127.0.0.1:8000"

    # The delivery worker (email retries, webhooks): runs in the background unless turned
    # off (tests drive it with `app.state.worker.run_once()`).
    notify_worker_background: bool = True
    notify_worker_poll_seconds: float = 2.0
    webhook_timeout_seconds: float = 15.0
    # Webhook attempts in flight at once (per process), and at most this many per endpoint
    # (across processes): a slow receiver holds its own slots, never the others'.
    webhook_concurrency: int = Field(32, ge=1, le=256)
    webhook_per_endpoint: int = Field(2, ge=1, le=32)
    # Reminders (training due soon/overdue, policy acknowledgments) go out as one digest email
    # per person per day: at this local hour (the person's time zone, UTC by default), or
    # when the batch window since the first reminder closes, if that comes first.
    notify_digest_hour: int = Field(8, ge=0, le=23)
    notify_digest_window_hours: float = Field(24.0, gt=0, le=48)
    # Production refuses plain-http webhook URLs.
    webhook_allow_http: bool | None = None

    # Webhooks to loopback addresses (a receiver on this machine): dev only unless set.
    # Private, link-local and metadata targets are never allowed (webhooks/targets.py).
    webhook_allow_loopback: bool | None = None

    @property
    def allows_http_webhooks(self) -> bool:
        return self.is_dev if self.webhook_allow_http is None else self.webhook_allow_http

    @property
    def allows_loopback_webhooks(self) -> bool:
        return self.is_dev if self.webhook_allow_loopback is None else self.webhook_allow_loopback
