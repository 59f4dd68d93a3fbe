"""Where the edge's rate-limit counters live: in this process (`memory`, the default for
`make run`) or in Redis, shared by every gateway replica (`redis`), chosen by
`UPSTANDER_RATE_LIMIT_STORE`.

The routes and the `/auth/*` middleware call the async facades here (`WindowLimit`,
`ReceiptLimits`); each holds the in-memory limiter of `ratelimit.py` and, when a shared store
is configured, a `LimitStore`. The Redis store runs each step of a limiter as one Lua script,
so replicas that share it agree: a limit of N a minute allows N across all of them, and the
receipt limiter keeps exactly the semantics of `ReceiptLimiter` (docs/threat-model.md,
"Receipt codes").

When the shared store cannot be reached (Redis down, refusing, or slower than
`UPSTANDER_REDIS_TIMEOUT_SECONDS`), ordinary limits fail open (a warning is logged once per
outage, without any key or address), while receipt-code exchanges fall back to this process's
memory: guessing stays limited, per replica, until Redis answers again. The per-source cap on
slow request bodies (`upstander.kit.http.BodyGuard`) stays per process by design: it
bounds the sockets this process holds open.

Keys are keyed hashes (BLAKE2b) of addresses, usernames and slugs, namespaced under
`UPSTANDER_RATE_LIMIT_KEY_PREFIX`, each with a TTL no longer than the state it holds matters,
so Redis keeps nothing once a limit has forgotten it. With Redis the hash key is derived from
the deployment's key-encryption key (every replica has it), so replicas name a source alike
while Redis alone cannot tell which address a key stands for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from upstander.gateway.edge.ratelimit import ReceiptLimiter, SlidingWindowLimiter, anonymise

log = logging.getLogger("upstander.gateway.ratelimit")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KEY_PREFIX = "upstander:ratelimit"
# Seconds past a key's last use before Redis drops it: slack for replicas' clocks and for the
# app clock running ahead of Redis's own (the scripts compare times, never trust the TTL).
_TTL_SLACK_SECONDS = 5.0


class StoreUnavailable(Exception):
    """The shared store did not answer (down, timed out, refused); nothing was counted."""


@dataclass(frozen=True)
class ReceiptPolicy:
    """The receipt limiter's numbers (`ReceiptLimiter`'s arguments), for a shared store."""

    burst: int
    per_minute: float
    org_failures_per_minute: int
    suspect_failures: int
    failure_memory_seconds: float

    @classmethod
    def of(cls, limiter: ReceiptLimiter) -> ReceiptPolicy:
        return cls(
            burst=limiter.burst,
            per_minute=limiter.rate * 60.0,
            org_failures_per_minute=limiter.org_ceiling,
            suspect_failures=limiter.suspect_failures,
            failure_memory_seconds=limiter.failure_memory,
        )


class LimitStore(Protocol):
    """Counters shared by every replica. Each call is one atomic step for all of them; `now`
    is the caller's clock (seconds since the epoch). A call that cannot reach the store raises
    `StoreUnavailable` and changes nothing."""

    def anonymise(self, value: str) -> str:
        """The key for an address, a username or a slug: the same on every replica."""
        ...

    async def window_hit(
        self, name: str, key: str, *, limit: int, window: float, now: float
    ) -> int | None:
        """`SlidingWindowLimiter.hit` on the shared counters of limiter `name`."""
        ...

    async def receipt_begin(
        self, policy: ReceiptPolicy, source: str, org: str, now: float
    ) -> int | None:
        """`ReceiptLimiter.begin`."""
        ...

    async def receipt_failed(
        self, policy: ReceiptPolicy, source: str, org: str, now: float
    ) -> None:
        """`ReceiptLimiter.failed`."""
        ...

    async def receipt_give_back(self, policy: ReceiptPolicy, source: str, now: float) -> None:
        """`ReceiptLimiter.succeeded` / `abandoned`: the attempt's token is given back."""
        ...

    async def receipt_org_failures(self, org: str, now: float) -> int:
        """`ReceiptLimiter.org_failures`."""
        ...

    async def aclose(self) -> None: ...


# -- Redis --------------------------------------------------------------------------------------

# A sliding log per key (a sorted set of hit times), as `SlidingWindowLimiter`: refused hits
# are not recorded. KEYS: the log. ARGV: now, window, limit, a unique member, TTL in ms.
_WINDOW_HIT = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  return math.max(1, math.ceil(oldest + window - now))
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, ARGV[5])
return false
"""

# `ReceiptLimiter` in Lua, one script per method, sharing these helpers. KEYS: the source's
# bucket (a hash: tokens, updated), the source's failures (a sorted set of times), the
# organisation's latest failures (a sorted set of at most `ceiling` times). ARGV: now, burst,
# rate per second, ceiling, suspect failures, failure memory (s), org window (s), a unique
# member, then the TTLs in ms of the bucket, the source's failures, the org's failures.
_RECEIPT_COMMON = """
local bucket_key, failures_key, org_key = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local ceiling = tonumber(ARGV[4])
local suspect = tonumber(ARGV[5])
local memory = tonumber(ARGV[6])
local org_window = tonumber(ARGV[7])
local member = ARGV[8]
local bucket_ttl, failures_ttl, org_ttl = ARGV[9], ARGV[10], ARGV[11]

-- The source's bucket refilled to `now`, and its failures older than `memory` forgotten.
local function refill()
  local state = redis.call('HMGET', bucket_key, 'tokens', 'updated')
  local tokens, updated = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or updated == nil then
    tokens, updated = burst, now
  end
  -- A replica whose clock is a little behind must not take tokens away.
  local elapsed = math.max(0, now - updated)
  tokens = math.min(burst, tokens + elapsed * rate)
  redis.call('ZREMRANGEBYSCORE', failures_key, '-inf', now - memory)
  return tokens, math.max(now, updated)
end

local function save(tokens, updated)
  redis.call('HSET', bucket_key, 'tokens', string.format('%.17g', tokens),
             'updated', string.format('%.17g', updated))
  redis.call('PEXPIRE', bucket_key, bucket_ttl)
end

-- Seconds until the organisation is under its failure ceiling again (0: it is).
local function org_calm_in()
  if redis.call('ZCARD', org_key) < ceiling then
    return 0
  end
  local oldest = tonumber(redis.call('ZRANGE', org_key, 0, 0, 'WITHSCORES')[2])
  return math.max(0, oldest + org_window - now)
end
"""

_RECEIPT_BEGIN = (
    _RECEIPT_COMMON
    + """
local tokens, updated = refill()
local wait = false
if redis.call('ZCARD', failures_key) >= suspect then
  local calm_in = org_calm_in()
  if calm_in > 0 then
    wait = math.max(1, math.ceil(calm_in))
  end
end
if not wait then
  if tokens < 1 then
    wait = math.max(1, math.ceil((1 - tokens) / rate))
  else
    tokens = tokens - 1
  end
end
save(tokens, updated)
return wait
"""
)

_RECEIPT_FAILED = (
    _RECEIPT_COMMON
    + """
local tokens, updated = refill()
save(tokens, updated)
redis.call('ZADD', failures_key, now, member)
redis.call('PEXPIRE', failures_key, failures_ttl)
redis.call('ZADD', org_key, now, member)
-- Only the latest `ceiling` failures matter (the ceiling is reached when the oldest of them
-- is less than a minute old), so only they are kept.
redis.call('ZREMRANGEBYRANK', org_key, 0, -(ceiling + 1))
redis.call('PEXPIRE', org_key, org_ttl)
return false
"""
)

_RECEIPT_GIVE_BACK = (
    _RECEIPT_COMMON
    + """
local tokens, updated = refill()
save(math.min(burst, tokens + 1), updated)
return false
"""
)


def _ttl_ms(seconds: float) -> str:
    return str(math.ceil((seconds + _TTL_SLACK_SECONDS) * 1000))


def _number(value: float) -> str:
    # repr() round-trips a float exactly, and Lua's tonumber reads it back the same.
    return repr(float(value))


def shared_hash_key(kek: str) -> bytes:
    """The BLAKE2b key of the shared store's keys, derived from the deployment's KEK (every
    replica holds it) for this one purpose."""
    return hmac.new(kek.encode(), b"upstander rate-limit keys v1", hashlib.sha256).digest()


class RedisLimitStore:
    """`LimitStore` on Redis (standalone or behind Sentinel; not Redis Cluster: a receipt step
    touches keys of a source and of an organisation in one script).

    Calls time out after `timeout` seconds; after a failure the store is skipped for
    `retry_seconds` (answering `StoreUnavailable` at once) rather than making every request
    wait for a dead server."""

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        *,
        hash_key: bytes,
        prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = 0.5,
        retry_seconds: float = 5.0,
        client: Any = None,
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.prefix = prefix.rstrip(":")
        self.retry_seconds = retry_seconds
        self._hash_key = hash_key
        self._redis: Any = client or Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One try: the fallback is better than a request held while Redis is retried.
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._window_hit = self._redis.register_script(_WINDOW_HIT)
        self._receipt_begin = self._redis.register_script(_RECEIPT_BEGIN)
        self._receipt_failed = self._redis.register_script(_RECEIPT_FAILED)
        self._receipt_give_back = self._redis.register_script(_RECEIPT_GIVE_BACK)
        self._skip_until = 0.0
        self._down = False

    def anonymise(self, value: str) -> str:
        return hashlib.blake2b(value.encode(), key=self._hash_key, digest_size=16).hexdigest()

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, script: Any, keys: list[str], args: list[str]) -> Any:
        from redis.exceptions import RedisError

        if self._down and time.monotonic() < self._skip_until:
            raise StoreUnavailable("skipped while the store is unreachable")
        try:
            result = await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + self.retry_seconds
            if not self._down:
                self._down = True
                # No key, address or URL (it may carry a password): the kind of failure only.
                log.warning(
                    "rate-limit store unreachable (%s): ordinary limits are not applied and "
                    "receipt limits use this process's memory until it answers",
                    type(exc).__name__,
                )
            raise StoreUnavailable(type(exc).__name__) from exc
        if self._down:
            self._down = False
            log.warning("rate-limit store reachable again: limits are shared across replicas")
        return result

    async def window_hit(
        self, name: str, key: str, *, limit: int, window: float, now: float
    ) -> int | None:
        result = await self._run(
            self._window_hit,
            [self._key("window", name, key)],
            [_number(now), _number(window), str(limit), _member(now), _ttl_ms(window)],
        )
        return None if result is None else int(result)

    def _receipt_call(
        self, policy: ReceiptPolicy, source: str, org: str, now: float
    ) -> tuple[list[str], list[str]]:
        rate = policy.per_minute / 60.0
        keys = [
            self._key("receipt", "bucket", source),
            self._key("receipt", "failures", source),
            self._key("receipt", "org", org),
        ]
        args = [
            _number(now),
            str(policy.burst),
            _number(rate),
            str(policy.org_failures_per_minute),
            str(policy.suspect_failures),
            _number(policy.failure_memory_seconds),
            _number(ReceiptLimiter.ORG_WINDOW),
            _member(now),
            # A bucket left alone this long is full again: as good as no bucket at all.
            _ttl_ms(policy.burst / rate),
            _ttl_ms(policy.failure_memory_seconds),
            _ttl_ms(ReceiptLimiter.ORG_WINDOW),
        ]
        return keys, args

    async def receipt_begin(
        self, policy: ReceiptPolicy, source: str, org: str, now: float
    ) -> int | None:
        keys, args = self._receipt_call(policy, source, org, now)
        result = await self._run(self._receipt_begin, keys, args)
        return None if result is None else int(result)

    async def receipt_failed(
        self, policy: ReceiptPolicy, source: str, org: str, now: float
    ) -> None:
        keys, args = self._receipt_call(policy, source, org, now)
        await self._run(self._receipt_failed, keys, args)

    async def receipt_give_back(self, policy: ReceiptPolicy, source: str, now: float) -> None:
        # The organisation's key is not touched; any name will do.
        keys, args = self._receipt_call(policy, source, "-", now)
        await self._run(self._receipt_give_back, keys, args)

    async def receipt_org_failures(self, org: str, now: float) -> int:
        from redis.exceptions import RedisError

        try:
            count = await self._redis.zcount(
                self._key("receipt", "org", org), f"({now - ReceiptLimiter.ORG_WINDOW!r}", "+inf"
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return int(count)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _member(now: float) -> str:
    # Sorted-set members must differ even when two hits share a time (two replicas, a frozen
    # clock); the score carries the time.
    return f"{now!r}:{secrets.token_hex(8)}"


# -- what the routes call -----------------------------------------------------------------------


class WindowLimit:
    """An ordinary limit (at most `limit` hits a `window` per key), async: in the shared store
    when there is one (failing open while it is unreachable), else in `local`."""

    def __init__(self, name: str, local: SlidingWindowLimiter, store: LimitStore | None) -> None:
        self.name = name
        self.local = local
        self.store = store

    def key(self, value: str) -> str:
        return self.store.anonymise(value) if self.store else anonymise(value)

    async def hit(self, key: str) -> int | None:
        """None when the hit is allowed, else the seconds to wait."""
        if self.store is None:
            return self.local.hit(key)
        try:
            return await self.store.window_hit(
                self.name,
                key,
                limit=self.local.limit,
                window=self.local.window,
                now=self.local.clock.now().timestamp(),
            )
        except StoreUnavailable:
            return None  # fail open: an outage of Redis must not stop sign-ins


class ReceiptLimits:
    """`ReceiptLimiter`, async: in the shared store when there is one, else (and while it is
    unreachable) in `local`, so receipt guessing is always limited, per process at worst.

    Use as `ReceiptLimiter`: `retry = await limits.begin(source, org)`; when None, after the
    check exactly one of `failed`, `succeeded`, `abandoned`. Keys come from `key(value)`."""

    def __init__(self, local: ReceiptLimiter, store: LimitStore | None) -> None:
        self.local = local
        self.store = store
        self.policy = ReceiptPolicy.of(local)

    def key(self, value: str) -> str:
        return self.store.anonymise(value) if self.store else anonymise(value)

    def _now(self) -> float:
        return self.local.clock.now().timestamp()

    async def begin(self, source: str, org: str) -> int | None:
        if self.store is not None:
            try:
                return await self.store.receipt_begin(self.policy, source, org, self._now())
            except StoreUnavailable:
                pass
        return self.local.begin(source, org)

    async def failed(self, source: str, org: str) -> None:
        if self.store is not None:
            try:
                await self.store.receipt_failed(self.policy, source, org, self._now())
                return
            except StoreUnavailable:
                pass
        self.local.failed(source, org)

    async def succeeded(self, source: str) -> None:
        await self._give_back(source)

    async def abandoned(self, source: str) -> None:
        await self._give_back(source)

    async def _give_back(self, source: str) -> None:
        if self.store is not None:
            try:
                await self.store.receipt_give_back(self.policy, source, self._now())
                return
            except StoreUnavailable:
                pass
        self.local.succeeded(source)

    async def org_failures(self, org: str) -> int:
        """Failures of the organisation in the last minute, up to the ceiling (for tests)."""
        if self.store is not None:
            return await self.store.receipt_org_failures(org, self._now())
        return self.local.org_failures(org)


def open_store(settings: Any) -> LimitStore | None:
    """The shared store the settings choose (`rate_limit_store`), or None for memory."""
    choice = str(getattr(settings, "rate_limit_store", "memory")).lower()
    if choice == "memory":
        return None
    if choice != "redis":
        raise ValueError(f"unknown rate-limit store {choice!r}: memory or redis")
    return RedisLimitStore(
        str(getattr(settings, "redis_url", DEFAULT_REDIS_URL)),
        hash_key=shared_hash_key(str(settings.kek)),
        prefix=str(getattr(settings, "rate_limit_key_prefix", DEFAULT_KEY_PREFIX)),
        timeout=float(getattr(settings, "redis_timeout_seconds", 0.5)),
        retry_seconds=float(getattr(settings, "rate_limit_store_retry_seconds", 5.0)),
    )
