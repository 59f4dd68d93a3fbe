"""The gateway's settings: its database, token lifetimes, demo bootstrap and edge limits."""

from __future__ import annotations

from typing import ClassVar

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
