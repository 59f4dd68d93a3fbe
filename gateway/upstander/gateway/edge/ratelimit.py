"""In-memory rate limits for the gateway's edge: a sliding window per key, a growing delay per
key, the receipt-code limiter, and an ASGI middleware for `/auth/*` keyed by source.

These are the `memory` store (the default) and the per-process fallback of receipt limits;
`limitstore.py` shares the same limits across replicas in Redis
(`UPSTANDER_RATE_LIMIT_STORE=redis`). Client addresses are only ever held as a keyed hash:
never logged, never stored in a row."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import ASGIApp, Scope

from upstander.kit.clock import Clock
from upstander.kit.edge import Answer, EdgeMiddleware, Exchange
from upstander.kit.errors import PROBLEM_BASE, PROBLEM_JSON

DEFAULT_MAX_KEYS = 100_000
_ADDRESS_SALT = secrets.token_bytes(32)


def anonymise(value: str) -> str:
    """A per-process keyed hash, so a limiter's keys never spell out an address or a name."""
    return hashlib.blake2b(value.encode(), key=_ADDRESS_SALT, digest_size=16).hexdigest()


class SlidingWindowLimiter:
    """At most `limit` hits per `window_seconds` per key (a sliding log of hit times).

    `hit(key)` records an attempt and answers None when it is allowed, or the seconds to wait
    when it is not (refused attempts are not recorded, so waiting always helps). The methods
    never await, so they are atomic on the event loop; a lock covers use from threads.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        clock: Clock | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window = float(window_seconds)
        self.clock = clock or Clock()
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def hit(self, key: str) -> int | None:
        now = self._now()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = deque()
                self._hits[key] = hits
                self._evict(now)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return None

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def _evict(self, now: float) -> None:
        if len(self._hits) <= self.max_keys:
            return
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=deque)
    level: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class GrowingDelayLimiter:
    """`free_failures` failures per key within `window_seconds` cost nothing; after that each
    failure blocks the key for a delay that doubles (`base_delay`, 2×, 4×, … capped at
    `max_delay`). A success resets the key; so does `forget_after` seconds without failures.

    Only for keys that belong to the one who fails (a source, an account they hold): on a key
    that others share (an organisation) anyone's failures would lock everyone out. Receipt codes
    use `ReceiptLimiter` instead.

    Use: `retry = limiter.check(key)` before the attempt (refuse with 429 when not None), then
    `limiter.failure(key)` or `limiter.success(key)` after it.
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        window_seconds: float = 15 * 60,
        base_delay: float = 1.0,
        max_delay: float = 3600.0,
        forget_after: float = 24 * 3600,
        clock: Clock | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.free_failures = free_failures
        self.window = float(window_seconds)
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.forget_after = float(forget_after)
        self.clock = clock or Clock()
        self.max_keys = max_keys
        self._state: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def check(self, key: str) -> int | None:
        now = self._now()
        with self._lock:
            state = self._state.get(key)
            if state is None or now >= state.blocked_until:
                return None
            return max(1, math.ceil(state.blocked_until - now))

    def failure(self, key: str) -> int | None:
        """Record a failed attempt; the seconds the key is now blocked for, or None."""
        now = self._now()
        with self._lock:
            state = self._state.get(key)
            if state is None or now - state.last_failure > self.forget_after:
                state = _Failures()
                self._state[key] = state
                self._evict(now)
            else:
                self._state.move_to_end(key)
            state.last_failure = now
            while state.times and state.times[0] <= now - self.window:
                state.times.popleft()
            state.times.append(now)
            if state.level == 0 and len(state.times) < self.free_failures:
                return None
            delay = min(self.base_delay * 2**state.level, self.max_delay)
            state.level += 1
            state.blocked_until = max(state.blocked_until, now + delay)
            return max(1, math.ceil(state.blocked_until - now))

    def success(self, key: str) -> None:
        with self._lock:
            self._state.pop(key, None)

    def _evict(self, now: float) -> None:
        if len(self._state) <= self.max_keys:
            return
        stale = [
            k
            for k, s in self._state.items()
            if s.blocked_until <= now and s.last_failure <= now - self.window
        ]
        for key in stale:
            del self._state[key]
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)


@dataclass
class _Bucket:
    tokens: float
    updated: float
    failures: deque[float] = field(default_factory=deque)


class ReceiptLimiter:
    """Limits for receipt-code exchanges that protect capacity and never lock out a reporter who
    holds a right code (docs/threat-model.md, "Receipt codes").

    - Each source has a bucket of attempts: `burst` at once, refilled at `per_minute`. An
      attempt takes one before it is checked (so concurrent guesses are bounded too); a
      success gives it back (a right code costs its holder nothing), a failure keeps it.
    - Each organisation counts its failures over the last minute. When they reach
      `org_failures_per_minute`, a source that itself failed `suspect_failures` times in the
      last `failure_memory_seconds` waits until the count drops (at most a minute, never
      growing); a source without such failures is served as always.
    - Nothing grows: no delay doubles, no key of an organisation blocks anyone, and a success
      does not wipe the source's failures (or a code of one's own could launder guesses).

    Keys are keyed hashes (`anonymise`) in memory only; entries are dropped least recently
    used beyond `max_keys`. Use: `retry = limiter.begin(source, org)`; when not None refuse
    with 429 and `Retry-After: retry`; otherwise after the check call exactly one of
    `failed(source, org)`, `succeeded(source)` or `abandoned(source)` (the check could not be
    made: not the caller's fault).
    """

    ORG_WINDOW = 60.0

    def __init__(
        self,
        *,
        burst: int = 5,
        per_minute: float = 5.0,
        org_failures_per_minute: int = 30,
        suspect_failures: int = 3,
        failure_memory_seconds: float = 900.0,
        clock: Clock | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if burst < 1 or per_minute <= 0 or org_failures_per_minute < 1 or suspect_failures < 1:
            raise ValueError("limits must be positive")
        self.burst = burst
        self.rate = per_minute / 60.0
        self.org_ceiling = org_failures_per_minute
        self.suspect_failures = suspect_failures
        self.failure_memory = float(failure_memory_seconds)
        self.clock = clock or Clock()
        self.max_keys = max_keys
        self._sources: OrderedDict[str, _Bucket] = OrderedDict()
        # The times of an organisation's latest failures, at most `org_ceiling` of them: the
        # ceiling is reached when the oldest of a full deque is less than a minute old.
        self._orgs: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _bucket(self, source: str, now: float) -> _Bucket:
        bucket = self._sources.get(source)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._sources[source] = bucket
            while len(self._sources) > self.max_keys:
                self._sources.popitem(last=False)
            return bucket
        self._sources.move_to_end(source)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        while bucket.failures and bucket.failures[0] <= now - self.failure_memory:
            bucket.failures.popleft()
        return bucket

    def _org_calm_in(self, org: str, now: float) -> float:
        """Seconds until the organisation is under its failure ceiling again (0: it is)."""
        failures = self._orgs.get(org)
        if failures is None or len(failures) < self.org_ceiling:
            return 0.0
        return max(0.0, failures[0] + self.ORG_WINDOW - now)

    def begin(self, source: str, org: str) -> int | None:
        """Take an attempt for `source` on `org`: None when allowed, else seconds to wait."""
        now = self._now()
        with self._lock:
            bucket = self._bucket(source, now)
            if len(bucket.failures) >= self.suspect_failures:
                calm_in = self._org_calm_in(org, now)
                if calm_in > 0:
                    return max(1, math.ceil(calm_in))
            if bucket.tokens < 1.0:
                return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
            bucket.tokens -= 1.0
            return None

    def failed(self, source: str, org: str) -> None:
        """The attempt's code was wrong: it keeps its token and counts as a failure of the
        source and of the organisation."""
        now = self._now()
        with self._lock:
            self._bucket(source, now).failures.append(now)
            failures = self._orgs.get(org)
            if failures is None:
                failures = deque(maxlen=self.org_ceiling)
                self._orgs[org] = failures
                while len(self._orgs) > self.max_keys:
                    self._orgs.popitem(last=False)
            else:
                self._orgs.move_to_end(org)
            failures.append(now)

    def succeeded(self, source: str) -> None:
        """The attempt's code was right: its token is given back."""
        self._give_back(source)

    def abandoned(self, source: str) -> None:
        """The code could not be checked (intake unavailable): its token is given back."""
        self._give_back(source)

    def _give_back(self, source: str) -> None:
        now = self._now()
        with self._lock:
            bucket = self._bucket(source, now)
            bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    def org_failures(self, org: str) -> int:
        """Failures of the organisation in the last minute, up to the ceiling (for tests)."""
        now = self._now()
        with self._lock:
            failures = self._orgs.get(org) or deque()
            return sum(1 for t in failures if t > now - self.ORG_WINDOW)


class HitLimiter(Protocol):
    """What the middleware needs of a limit: its key for a value, and an async `hit`
    (`limitstore.WindowLimit`, in memory or shared)."""

    def key(self, value: str) -> str: ...

    async def hit(self, key: str) -> int | None: ...


def _source(scope: Scope, limiter: HitLimiter) -> str:
    client = scope.get("client")
    return limiter.key(client[0]) if client else "unknown"


class RateLimit:
    """Edge step (kit/edge.py): limit requests per source address on the paths under
    `prefixes` (default `/auth/`). Any other path costs one prefix check.

    Per-client and per-username limits need the form body, so the auth handlers apply those
    themselves with a limit's `await hit(key)`.
    """

    name = "rate_limit"

    def __init__(self, *, limiter: HitLimiter, prefixes: tuple[str, ...] = ("/auth/",)) -> None:
        self.limiter = limiter
        self.prefixes = prefixes

    def enter(self, exchange: Exchange) -> Any:
        if not exchange.scope["path"].startswith(self.prefixes):
            return None
        return self._limit(exchange.scope)

    async def _limit(self, scope: Scope) -> Answer | None:
        retry_after = await self.limiter.hit("source:" + _source(scope, self.limiter))
        if retry_after is None:
            return None
        problem: dict[str, object] = {
            "type": PROBLEM_BASE + "rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "Too many requests; retry later.",
            "instance": scope["path"],
            # RFC 6749 §5.2 members too: OAuth clients of /auth/token must see an error, never
            # take this for a token (docs/auth.md).
            "error": "slow_down",
            "error_description": "Too many requests; retry later.",
        }
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            problem["request_id"] = request_id
        body = json.dumps(problem).encode()
        return Answer(
            429,
            [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"cache-control", b"no-store"),
            ],
            body,
        )


class RateLimitMiddleware(EdgeMiddleware):
    """`RateLimit` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: HitLimiter,
        prefixes: tuple[str, ...] = ("/auth/",),
    ) -> None:
        super().__init__(app, steps=[RateLimit(limiter=limiter, prefixes=prefixes)])
