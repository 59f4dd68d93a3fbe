"""Token-signing keys: Ed25519 key pairs kept encrypted in the database, published as a JWKS,
rotated by `python -m upstander.gateway.auth.keys rotate`."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.gateway.models import SigningKey
from upstander.gateway.settings import Settings
from upstander.kit.clock import Clock
from upstander.kit.errors import Unauthorized

log = logging.getLogger("upstander.gateway.keys")

_HKDF_INFO = b"upstander/gateway/signing-keys/v1"


def parse_keks(spec: str) -> list[tuple[str, bytes]]:
    """`"kid:base64key,kid2:base64key"` → [(kid, key material)]; the first one encrypts."""
    keks: list[tuple[str, bytes]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, encoded = part.partition(":")
        if not sep or not kid:
            raise ValueError("each KEK is 'kid:base64key'")
        material = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        if len(material) < 16:
            raise ValueError(f"KEK {kid!r} is shorter than 128 bits")
        keks.append((kid, material))
    if not keks:
        raise ValueError("no key-encryption key configured (UPSTANDER_KEK)")
    return keks


def _wrapping_key(material: bytes) -> AESGCM:
    # A key derived for this one purpose, so the KEK itself is never used directly here.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        material
    )
    return AESGCM(derived)


def encrypt_private_key(keks: list[tuple[str, bytes]], kid: str, pem: bytes) -> tuple[str, bytes]:
    kek_id, material = keks[0]
    nonce = secrets.token_bytes(12)
    return kek_id, nonce + _wrapping_key(material).encrypt(nonce, pem, kid.encode())


def decrypt_private_key(keks: list[tuple[str, bytes]], row: SigningKey) -> Ed25519PrivateKey:
    material = dict(keks).get(row.kek_id)
    if material is None:
        raise RuntimeError(f"signing key {row.kid} is wrapped by unknown KEK {row.kek_id!r}")
    blob = row.private_key_encrypted
    pem = _wrapping_key(material).decrypt(blob[:12], blob[12:], row.kid.encode())
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError("signing key is not Ed25519")
    return key


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _public_from_b64(value: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    )


def new_signing_key(keks: list[tuple[str, bytes]], now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = now.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kek_id, encrypted = encrypt_private_key(keks, kid, pem)
    return SigningKey(
        kid=kid,
        kek_id=kek_id,
        private_key_encrypted=encrypted,
        public_key=_b64url(public),
        created_at=now,
        active=True,
        retired_at=None,
    )


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    public_key: Ed25519PublicKey
    x: str
    active: bool

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        }


class KeyStore:
    """The gateway's signing keys. Loaded from the database at start-up (creating the first key
    if there is none) and reloaded now and then, so a rotation done by another process (the CLI,
    another replica) is picked up. `key(kid)` makes it a drop-in for the kit's `JWKSCache`,
    so the gateway verifies its own tokens without calling itself over HTTP."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock | None = None,
        *,
        reload_seconds: float = 60.0,
        min_reload_seconds: float = 5.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock or Clock()
        self.reload_seconds = reload_seconds
        self.min_reload_seconds = min_reload_seconds
        self._keks = parse_keks(settings.kek)
        self._published: dict[str, PublishedKey] = {}
        self._signing: tuple[str, Ed25519PrivateKey] | None = None
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def retention(self) -> timedelta:
        return timedelta(seconds=self.settings.signing_key_retention_seconds)

    async def load(self) -> None:
        """Read the keys (and make the first one when the table is empty)."""
        async with self._lock, self.sessionmaker() as session:
            now = self.clock.now()
            rows = await self._published_rows(session, now)
            if not any(row.active for row in rows):
                row = new_signing_key(self._keks, now)
                session.add(row)
                await session.commit()
                log.info("created signing key", extra={"kid": row.kid})
                rows = await self._published_rows(session, now)
            self._apply(rows)

    async def _published_rows(self, session: AsyncSession, now: datetime) -> list[SigningKey]:
        statement = (
            select(SigningKey)
            .where(
                or_(
                    SigningKey.active.is_(True),
                    SigningKey.retired_at > now - self.retention,
                )
            )
            .order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
        )
        return list((await session.scalars(statement)).all())

    def _apply(self, rows: list[SigningKey]) -> None:
        published = {
            row.kid: PublishedKey(
                row.kid, _public_from_b64(row.public_key), row.public_key, row.active
            )
            for row in rows
        }
        newest = next(row for row in rows if row.active)
        if self._signing is None or self._signing[0] != newest.kid:
            self._signing = (newest.kid, decrypt_private_key(self._keks, newest))
        self._published = published
        self._loaded_at = time.monotonic()

    async def _reload(self) -> None:
        async with self._lock, self.sessionmaker() as session:
            rows = await self._published_rows(session, self.clock.now())
            if any(row.active for row in rows):
                self._apply(rows)

    async def rotate(self) -> str:
        """Make a new signing key; the old ones are retired but stay published for a while."""
        async with self._lock, self.sessionmaker() as session:
            now = self.clock.now()
            await session.execute(
                update(SigningKey)
                .where(SigningKey.active.is_(True))
                .values(active=False, retired_at=now)
            )
            row = new_signing_key(self._keks, now)
            session.add(row)
            await session.commit()
            log.info("rotated signing key", extra={"kid": row.kid})
            rows = await self._published_rows(session, now)
            self._apply(rows)
            return row.kid

    async def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """The (kid, private key) that signs new tokens."""
        if self._signing is None:
            await self.load()
        elif time.monotonic() - self._loaded_at > self.reload_seconds:
            await self._reload()
        assert self._signing is not None
        return self._signing

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self._published.values()]}

    async def key(self, kid: str) -> Any:
        """The public key for `kid` (the kit's `JWKSCache` interface); 401 when unknown."""
        if kid not in self._published and (
            time.monotonic() - self._loaded_at > self.min_reload_seconds
        ):
            await self._reload()
        published = self._published.get(kid)
        if published is None:
            raise Unauthorized("The token was signed with an unknown key.")
        return published.public_key


async def _rotate_cli() -> str:
    from upstander.kit.db import make_engine, make_sessionmaker

    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        store = KeyStore(make_sessionmaker(engine), settings)
        return await store.rotate()
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m upstander.gateway.auth.keys")
    parser.add_argument("command", choices=["rotate"])
    parser.parse_args(argv)
    kid = asyncio.run(_rotate_cli())
    print(f"new signing key: {kid} (running gateways pick it up within a minute)")


if __name__ == "__main__":
    main()
