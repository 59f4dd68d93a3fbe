"""The gateway's settings: its database, token lifetimes, demo bootstrap and edge limits."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from upstander.kit.settings import KitSettings

DEV_DEMO_PASSWORD = "upstander-demo"


class Settings(KitSettings):
    service_name: ClassVar[str] = "gateway"

    database_url: str = Field(
        "sqlite+aiosqlite:///var/gateway.db",
        validation_alias="UPSTANDER_GATEWAY_DATABASE_URL",
    )
    port: int = Field(8000, validation_alias="UPSTANDER_GATEWAY_PORT")

    # Demo data (dev mode only): the password of every `<role>@demo.example` person.
    demo_password: str = DEV_DEMO_PASSWORD
    bootstrap_demo: bool = Field(
        default=True, description="Create the demo organisation on first start (dev mode only)."
    )

    # Token lifetimes. People's access tokens stay short (≤ 15 minutes).
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=900)
    client_token_ttl_seconds: int = Field(default=3600, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    reporter_token_ttl_seconds: int = Field(default=900, ge=30, le=3600)
    # Retired signing keys stay in the JWKS this long, so tokens signed before a rotation verify.
    signing_key_retention_seconds: int = Field(default=24 * 3600, ge=3600)

    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = 25 * 1024 * 1024

    # Requests per minute on /auth/*: per source address, and per client id or username.
    auth_rate_limit_per_minute: int = Field(default=30, ge=1)
    auth_account_rate_limit_per_minute: int = Field(default=10, ge=1)

    # Where the rate-limit counters live (edge/limitstore.py): `memory`, this process's (the
    # default, `make run`), or `redis`, shared by every gateway replica so that N replicas do
    # not allow N times each limit. While Redis is unreachable, ordinary limits are not applied
    # (a warning is logged) and receipt-code limits fall back to this process's memory.
    rate_limit_store: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    rate_limit_key_prefix: str = Field(default="upstander:ratelimit", min_length=1, max_length=100)
    # Each call to Redis waits at most this long; after a failure Redis is left alone this long.
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
    rate_limit_store_retry_seconds: float = Field(default=5.0, gt=0, le=300)

    # Slow clients (docs/threat-model.md, "Slow clients"): requests one source address may hold
    # open while their bodies are still arriving (over it: 429 at once). How long a body may
    # take is the kit's `request_body_*` settings. Per process on purpose, whatever the store:
    # it bounds the sockets this process holds open.
    slow_requests_per_source: int = Field(default=20, ge=1)
    # The proxy's connections to each service. Bodies up to `proxy_buffer_body_bytes` are read
    # whole before the service is asked, so a slow client never holds a service connection;
    # larger ones are streamed, at most `proxy_max_streamed_uploads` at once per service
    # (over it: 503), so slow uploads can take only that share of the pool.
    proxy_max_connections: int = Field(default=200, ge=1)
    proxy_max_keepalive_connections: int = Field(default=50, ge=0)
    proxy_buffer_body_bytes: int = Field(default=1024 * 1024, ge=0)
    proxy_max_streamed_uploads: int = Field(default=32, ge=1)
    # `GET /healthz` asks each service over a pool of its own, so a busy proxy pool never
    # makes the platform look down.
    health_max_connections: int = Field(default=4, ge=1)

    # Receipt-code exchanges (`POST /auth/receipt`; docs/threat-model.md, "Receipt codes").
    # Each source address has a bucket of attempts: `receipt_source_burst` at once, refilled
    # at `receipt_source_per_minute`; a success gives its attempt back. When an organisation
    # sees `receipt_org_failures_per_minute` failures in a minute, sources with
    # `receipt_suspect_failures` failures of their own in `receipt_failure_memory_seconds` wait
    # until it calms down; a source without them is always served.
    receipt_source_burst: int = Field(default=5, ge=1)
    receipt_source_per_minute: float = Field(default=5.0, gt=0)
    receipt_org_failures_per_minute: int = Field(default=30, ge=1)
    receipt_suspect_failures: int = Field(default=3, ge=1)
    receipt_failure_memory_seconds: float = Field(default=900.0, gt=0)
