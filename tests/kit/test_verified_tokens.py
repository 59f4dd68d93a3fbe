"""The verifier remembers tokens it verified (the signature is checked once per token), and a
remembered token is held to everything else as a new one: the clock (an expired token is
refused), the revocation check (asked every time), and the keys (a token whose key left the
JWKS is refused)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import TokenMinter

from upstander.kit.auth import LEEWAY_SECONDS, Principal, TokenVerifier
from upstander.kit.clock import FrozenClock
from upstander.kit.errors import TokenRevoked, Unauthorized

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Keys:
    """A key source like the JWKS cache: the same key object until the keys change. Its
    tokens are signed as the gateway signs them (`helpers.TokenMinter`)."""

    def __init__(self) -> None:
        self.minter = TokenMinter()
        self.keys: dict[str, Any] = {self.minter.kid: self.minter.key.public_key()}

    async def key(self, kid: str) -> Any:
        if kid not in self.keys:
            raise Unauthorized("The token was signed with an unknown key.")
        return self.keys[kid]


def mint(keys: Keys, ttl: int = 300) -> str:
    return keys.minter.mint(org=uuid.uuid4(), roles=["admin"], ttl=ttl, issued_at=NOW)


def verifier(keys: Keys, clock: FrozenClock) -> TokenVerifier:
    return TokenVerifier(keys, audience="upstander", issuer="upstander", clock=clock)


async def test_a_token_is_verified_once_and_remembered() -> None:
    keys, clock = Keys(), FrozenClock(NOW)
    check = verifier(keys, clock)
    token = mint(keys)

    first = await check.verify(token)
    second = await check.verify(token)

    assert second == first
    assert len(check._verified) == 1


async def test_a_remembered_token_is_refused_once_the_clock_passes_its_expiry() -> None:
    keys, clock = Keys(), FrozenClock(NOW)
    check = verifier(keys, clock)
    token = mint(keys, ttl=60)
    await check.verify(token)

    clock.advance(timedelta(seconds=60 + LEEWAY_SECONDS + 1))

    with pytest.raises(Unauthorized) as caught:
        await check.verify(token)
    assert caught.value.status == 401


async def test_the_revocation_check_is_asked_about_a_remembered_token_every_time() -> None:
    keys, clock = Keys(), FrozenClock(NOW)
    check = verifier(keys, clock)
    asked: list[Principal] = []
    revoked = False

    async def revocation(principal: Principal) -> bool:
        asked.append(principal)
        return revoked

    check.revocation_check = revocation
    token = mint(keys)
    await check.verify(token)
    await check.verify(token)
    revoked = True

    with pytest.raises(TokenRevoked):
        await check.verify(token)
    assert len(asked) == 3


async def test_a_remembered_token_whose_key_left_the_jwks_is_refused() -> None:
    keys, clock = Keys(), FrozenClock(NOW)
    check = verifier(keys, clock)
    token = mint(keys)
    await check.verify(token)

    keys.keys = {"another": Ed25519PrivateKey.generate().public_key()}

    with pytest.raises(Unauthorized):
        await check.verify(token)
    assert check._verified == {}


async def test_a_remembered_token_is_checked_again_against_a_refreshed_key() -> None:
    keys, clock = Keys(), FrozenClock(NOW)
    check = verifier(keys, clock)
    token = mint(keys)
    await check.verify(token)

    # The JWKS was fetched again: same kid, another key. The token no longer verifies.
    keys.keys = {keys.minter.kid: Ed25519PrivateKey.generate().public_key()}

    with pytest.raises(Unauthorized):
        await check.verify(token)


async def test_the_verifier_remembers_at_most_cache_size_tokens() -> None:
    keys, clock = Keys(), FrozenClock(NOW)
    check = TokenVerifier(keys, audience="upstander", issuer="upstander", clock=clock, cache_size=3)
    for _ in range(5):
        await check.verify(mint(keys))
    assert len(check._verified) == 3
