"""Argon2id hashing for passwords and client secrets, run off the event loop."""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are RFC 9106's second recommended Argon2id option; `configure`
# applies the gateway's settings (`password_hash_*`, which production keeps at least there).
_hasher = PasswordHasher()


def configure(*, time_cost: int, memory_kib: int) -> None:
    """Hash new secrets at this cost from now on. A hash made at another cost still verifies
    (its parameters are in it) and is rehashed at this one on its next successful check."""
    global _hasher
    if (_hasher.time_cost, _hasher.memory_cost) == (time_cost, memory_kib):
        return
    parallelism = _hasher.parallelism if memory_kib >= 8 * _hasher.parallelism else 1
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _dummy_hash.cache_clear()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_secret_sync(secret: str) -> str:
    return _hasher.hash(secret)


async def hash_secret(secret: str) -> str:
    return await asyncio.to_thread(_hasher.hash, secret)


def _verify(stored_hash: str | None, secret: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). With no stored hash, a dummy one is verified so an unknown
    account costs the same time as a wrong password (no user enumeration by timing)."""
    if stored_hash is None:
        try:
            _hasher.verify(_dummy_hash(), secret)
        except (VerificationError, InvalidHashError):
            pass
        return False, False
    try:
        _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(stored_hash)


async def verify_secret(stored_hash: str | None, secret: str) -> tuple[bool, bool]:
    return await asyncio.to_thread(_verify, stored_hash, secret)


def new_client_secret() -> str:
    """A client secret: 256 bits from `secrets`."""
    return secrets.token_urlsafe(32)
