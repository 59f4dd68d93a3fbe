"""The gateway's settings: its database, token lifetimes, demo bootstrap and edge limits."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from upstander.kit.settings import KitSettings

DEV_DEMO_PASSWORD = "upstander-demo"
# The dev-mode platform operator's secret: public (it is in the repository), refused elsewhere.
DEV_OPERATOR_SECRET = "demo-operator-secret"
# argon2-cffi's defaults, RFC 9106's second recommended Argon2id option: the least production takes.
PRODUCTION_HASH_TIME_COST = 3
PRODUCTION_HASH_MEMORY_KIB = 64 * 1024


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

    # The platform operator (identity/orgs.py, docs/auth.md "Platform operators"): an API
    # client above every organisation, with scope `platform:orgs`, kept in step with these at
    # each start. No secret: no operator (an existing one is deactivated). Dev mode has one,
    # `platform-operator` / `demo-operator-secret`, like the demo's other credentials.
    operator_client_id: str = Field(default="platform-operator", min_length=3, max_length=100)
    operator_client_secret: str | None = Field(default=None, min_length=16, max_length=256)
    # An organisation's first admin is invited by a one-time link: this base, then
    # `#token=<token>` (a fragment: never sent to a server, never in an access log). Default:
    # the gateway's `/invite` page. It stays valid this long.
    invitation_url: str | None = Field(default=None, max_length=500)
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=300, le=30 * 24 * 3600)

    # Browser origins every organisation may call the API from; each organisation and client
    # adds its own through the API (edge/cors.py; docs/auth.md, "CORS").
    cors_origins: list[str] = Field(default_factory=list)
    # How long the CORS layer keeps the origins the organisations and clients allow before
    # reading them again (a change made through this replica applies at once).
    cors_cache_seconds: float = Field(default=30.0, ge=0, le=3600)

    # Browser sign-in (auth/authorize.py, auth/sso.py; docs/auth.md).
    authorization_code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    # The password grant without a client that allows it (`allow_password_grant`): for the
    # demo and first-party tools. None: allowed in dev mode only.
    password_grant_without_client: bool | None = None
    # Single sign-on: how long a sign-in at an organisation's provider may take, the timeout
    # of each call to the provider, and the least time between two fetches of its keys when
    # an ID token names a key it has not published (key rotation). Plain-http issuers are
    # accepted only for loopback addresses in dev mode (a local test provider).
    sso_login_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    sso_http_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    sso_jwks_refetch_seconds: float = Field(default=10.0, ge=0, le=3600)
    sso_discovery_cache_seconds: float = Field(default=3600.0, ge=0)
    max_body_bytes: int = 25 * 1024 * 1024

    # Argon2id cost of passwords and client secrets (auth/passwords.py): RFC 9106's "second
    # recommended option" (argon2-cffi's defaults) unless lowered; production refuses less.
    # Only throw-away platforms lower it (the test suite's, whose every start hashes the
    # demo's passwords and service clients' secrets).
    password_hash_time_cost: int = Field(default=PRODUCTION_HASH_TIME_COST, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=PRODUCTION_HASH_MEMORY_KIB, ge=8, le=4_194_304)

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
    # (over it: 503), so slow uploads can take only that share of the pool. The proxy's own
    # HTTP/1.1 pool (proxy/client.py) is bounded by `proxy_max_connections` alone, idle ones
    # included; `proxy_max_keepalive_connections` bounds the httpx pool an app made with
    # `transport=` (the tests' in-process services) forwards through.
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

    @property
    def password_grant_open(self) -> bool:
        """May a person use the password grant without a client that allows it?"""
        if self.password_grant_without_client is not None:
            return self.password_grant_without_client
        return self.mode == "dev"

    @model_validator(mode="after")
    def _production_hashes_at_full_cost(self) -> Settings:
        if self.mode == "production" and (
            self.password_hash_time_cost < PRODUCTION_HASH_TIME_COST
            or self.password_hash_memory_kib < PRODUCTION_HASH_MEMORY_KIB
        ):
            raise ValueError(
                "production mode refuses a password hash cost under Argon2id's RFC 9106 "
                f"profile (UPSTANDER_PASSWORD_HASH_TIME_COST >= {PRODUCTION_HASH_TIME_COST}, "
                f"UPSTANDER_PASSWORD_HASH_MEMORY_KIB >= {PRODUCTION_HASH_MEMORY_KIB})"
            )
        return self

    def default_secrets(self) -> dict[str, str]:
        # Production refuses the dev operator's secret, like the kit's own dev secrets.
        return {**super().default_secrets(), "operator_client_secret": DEV_OPERATOR_SECRET}
