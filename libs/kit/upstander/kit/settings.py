"""Settings from the environment (`UPSTANDER_*`): dev defaults that production refuses."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development-only secrets. They are public (they are in the repository), so production
# mode refuses to start while any of them is still in use.
DEV_KEK = "dev:ZGV2LW9ubHkta2V5LWVuY3J5cHRpb24ta2V5LTMyYnk="  # 32 bytes, base64
DEV_SERVICE_SECRET = "dev-service-secret-change-me"
DEV_RECEIPT_KEY = "dev-receipt-lookup-key-change-me"

SERVICE_PORTS = {"gateway": 8000, "intake": 8001, "cases": 8002, "training": 8003, "notify": 8004}


class KitSettings(BaseSettings):
    """Settings every service shares. Each service subclasses it and adds only its own."""

    model_config = SettingsConfigDict(
        env_prefix="UPSTANDER_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    service_name: ClassVar[str] = "kit"

    mode: Literal["dev", "production"] = "dev"
    database_url: str = ""
    log_level: str = "INFO"
    log_json: bool = True

    # Where the others live. The gateway is the issuer of every token.
    gateway_url: str = "http://127.0.0.1:8000"
    intake_url: str = "http://127.0.0.1:8001"
    cases_url: str = "http://127.0.0.1:8002"
    training_url: str = "http://127.0.0.1:8003"
    notify_url: str = "http://127.0.0.1:8004"

    jwt_issuer: str = "upstander"
    jwt_audience: str = "upstander"
    jwks_cache_seconds: int = 300
    # How long a service trusts its cached view of a subject's access (kit.revocation) before
    # reading its ledger again; 0 reads it on every request. Events refresh it at once.
    access_cache_seconds: float = Field(default=1.0, ge=0, le=60)

    # Key-encryption keys, "kid:base64key" separated by commas; the first one wraps new data keys.
    kek: str = DEV_KEK
    # Shared by the platform's own service clients (svc-intake, svc-cases, ...).
    service_secret: str = DEV_SERVICE_SECRET

    http_connect_timeout: float = 3.0
    http_read_timeout: float = 30.0

    # PostgreSQL waits (kit/db.py DatabaseTimeouts): opening a connection, one statement (also
    # the server's `statement_timeout`), a free connection from the pool. Past any of them the
    # request answers 503 `database-unavailable`; the defaults keep that under 5 s.
    database_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    database_statement_timeout_seconds: float = Field(default=3.0, gt=0, le=3600)
    database_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    # Slow clients (kit/http.py BodyGuard): a request body must arrive within
    # `request_body_timeout_seconds`, plus one second per `request_body_min_bytes_per_second`
    # bytes received, and never take longer than `request_body_max_seconds`; else 408.
    request_body_timeout_seconds: float = Field(default=10.0, gt=0)
    request_body_min_bytes_per_second: int = Field(default=8192, gt=0)
    request_body_max_seconds: float = Field(default=300.0, gt=0)
    # The server itself (kit/server.py, each app's `__main__`): connections + requests held at
    # once before uvicorn answers 503 (0 = no limit), idle keep-alive, listen backlog.
    server_limit_concurrency: int = Field(default=2048, ge=0)
    server_timeout_keep_alive_seconds: float = Field(default=5.0, gt=0)
    server_backlog: int = Field(default=2048, ge=1)

    # How events travel between services (kit/events.py, docs/events.md): `http`, the
    # embedded push relay (nothing else to install), or `nats`, NATS JetStream.
    event_transport: Literal["http", "nats"] = "http"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = Field(default="UPSTANDER", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Events are spread over this many ordered lanes by their subject (a case, a person): one
    # durable consumer per lane and subscription, one event in flight per lane. Change it
    # only with the stream drained (an event's lane must not move while it is pending).
    nats_partitions: int = Field(default=4, ge=1, le=64)
    # An event handed to a consumer comes back to another after this long without an ack
    # (a crashed replica); a live handler extends it while it works.
    nats_ack_wait_seconds: float = Field(default=5.0, ge=1, le=600)
    # How long the stream keeps events (what a new consumer can replay), and the broker's
    # de-duplication window by `Nats-Msg-Id`.
    nats_stream_max_age_days: float = Field(default=14.0, gt=0)
    nats_duplicate_window_seconds: float = Field(default=120.0, gt=0)
    # Transient handler failures: redelivered after a backoff capped here (the lane waits).
    nats_max_delay_seconds: float = Field(default=60.0, gt=0)

    # The outbox relay: how often it polls when nothing woke it, and when a row is given up.
    relay_background: bool = True
    relay_poll_seconds: float = 2.0
    relay_max_attempts: int = 12
    relay_base_delay_seconds: float = 1.0
    relay_max_delay_seconds: float = 3600.0
    # A claimed batch is leased for this long and renewed while it is being delivered, so a
    # crashed relay's rows are claimable again within seconds.
    relay_lease_seconds: float = Field(default=10.0, ge=1, le=600)
    relay_batch_size: int = Field(default=100, ge=1, le=1000)

    # Pruning (kit/events.py EventPruner): delivered outbox rows are kept this long (for
    # operators), inbox ids longer than anything can deliver an event again (docs/events.md).
    outbox_retention_days: float = Field(default=7.0, gt=0)
    inbox_retention_days: float = Field(default=30.0, gt=0)
    event_prune_interval_seconds: float = Field(default=3600.0, gt=0)

    migrate_on_start: bool | None = Field(
        default=None, description="Apply Alembic migrations on start; default: yes in dev mode."
    )

    @property
    def is_dev(self) -> bool:
        return self.mode == "dev"

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_dev if self.migrate_on_start is None else self.migrate_on_start

    @property
    def jwks_url(self) -> str:
        return self.gateway_url.rstrip("/") + "/.well-known/jwks.json"

    def service_url(self, name: str) -> str:
        return str(getattr(self, f"{name}_url"))

    def default_secrets(self) -> dict[str, str]:
        """Fields and their dev defaults that production must override."""
        return {"kek": DEV_KEK, "service_secret": DEV_SERVICE_SECRET}

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> KitSettings:
        if self.mode == "production":
            defaults = [
                name for name, dev in self.default_secrets().items() if getattr(self, name) == dev
            ]
            if defaults:
                raise ValueError(
                    "production mode refuses development secrets; set "
                    + ", ".join(f"UPSTANDER_{n.upper()}" for n in defaults)
                )
            if not self.database_url or self.database_url.startswith("sqlite"):
                pass  # SQLite is allowed in production for single-node deployments.
        return self

    @model_validator(mode="after")
    def _inbox_outlives_redelivery(self) -> KitSettings:
        # An inbox id is what stops an event from taking effect twice. Anything the broker
        # still holds can come again (a redelivery, a durable consumer re-created to replay),
        # so the ids must be kept longer than the stream keeps events (docs/events.md).
        if self.inbox_retention_days <= self.nats_stream_max_age_days:
            raise ValueError(
                "UPSTANDER_INBOX_RETENTION_DAYS must exceed UPSTANDER_NATS_STREAM_MAX_AGE_DAYS"
            )
        return self
