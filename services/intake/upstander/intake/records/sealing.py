"""The cryptography of private records: a key from the record code, the record's data key
wrapped by it, entries sealed under that data key, and the signed time proofs.

- **Code key**: scrypt (memory-hard: n=2**15, r=8, p=1, 32 MiB) of the canonical record code
  with a random 16-byte salt, stored as `scrypt$n$r$p$salt_b64`. The code is never stored.
- **Data key**: 32 random bytes, wrapped under the code key with the kit's `Keyring` (AES-256-
  GCM; the record id is the AAD). A wrong code fails the wrap's authentication.
- **Entries**: AES-256-GCM under the data key (AAD: record and entry ids), then stored in
  an `EncryptedBytes` column, i.e. sealed again by the deployment's vault under a data key
  owned by the record. An operator with the database and the deployment's KEK still lacks
  the code; destroying the vault key (deletion) shreds every backup too.
- **Proofs**: the server signs, with its published Ed25519 key, a statement naming the
  record, the entry, the SHA-256 of the entry's document (canonical JSON) and the time.
  Anyone holding the document, the proof and the public key can check it offline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from upstander.kit.crypto import DecryptionError, Keyring

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
NONCE_BYTES = 12
_MAXMEM = 64 * 1024 * 1024
_WRAP_AAD = b"upstander-record-dek-v1:"
_ENTRY_AAD = b"upstander-record-entry-v1:"
_LOOKUP_DOMAIN = b"record-lookup|"
PROOF_TYPE = "upstander.record.entry"
_DECOY_SALT = secrets.token_bytes(SALT_BYTES)


class WrongCode(Exception):
    """The code does not open this record."""


def lookup_key(code: str, receipt_key: str) -> str:
    """HMAC-SHA256 of a canonical record code under the deployment's receipt key, in its own
    domain (never equal to a receipt code's lookup key)."""
    message = _LOOKUP_DOMAIN + code.encode("ascii")
    return hmac.new(receipt_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _scrypt(code: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P):
    return hashlib.scrypt(
        code.encode("ascii"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=_MAXMEM
    )


def new_code_key(code: str) -> tuple[str, bytes]:
    """(kdf spec, key) for a new record. Slow on purpose: call it off the event loop."""
    salt = secrets.token_bytes(SALT_BYTES)
    spec = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode('ascii')}"
    return spec, _scrypt(code, salt)


def code_key(code: str, spec: str) -> bytes:
    scheme, n, r, p, salt = spec.split("$")
    if scheme != "scrypt":
        raise WrongCode
    return _scrypt(code, base64.b64decode(salt), int(n), int(r), int(p))


def decoy_key() -> None:
    """Spend one derivation when there is no record, so a miss takes as long as a hit."""
    _scrypt("0" * 20, _DECOY_SALT)


def wrap_data_key(key: bytes, record_id: uuid.UUID, dek: bytes) -> bytes:
    _, wrapped = Keyring([("code", key)]).wrap(dek, _WRAP_AAD + record_id.bytes)
    return wrapped


def unwrap_data_key(key: bytes, record_id: uuid.UUID, wrapped: bytes) -> bytes:
    try:
        return Keyring([("code", key)]).unwrap("code", wrapped, _WRAP_AAD + record_id.bytes)
    except DecryptionError:
        raise WrongCode from None


def seal(dek: bytes, record_id: uuid.UUID, entry_id: uuid.UUID, value: dict[str, Any]) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    aad = _ENTRY_AAD + record_id.bytes + entry_id.bytes
    return nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)


def unseal(dek: bytes, record_id: uuid.UUID, entry_id: uuid.UUID, blob: bytes) -> dict[str, Any]:
    aad = _ENTRY_AAD + record_id.bytes + entry_id.bytes
    try:
        plaintext = AESGCM(dek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise WrongCode from None
    value = json.loads(plaintext)
    assert isinstance(value, dict)
    return value


def canonical(value: Any) -> bytes:
    """The bytes a proof's SHA-256 covers: JSON with sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    """The deployment's record-signing key (Ed25519), from `record_signing_key` (a base64
    32-byte seed)."""

    key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed_b64: str) -> Signer:
        seed = base64.b64decode(seed_b64, validate=True)
        if len(seed) != 32:
            raise ValueError("record_signing_key must be a base64 32-byte Ed25519 seed")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_raw(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def kid(self) -> str:
        return hashlib.sha256(self.public_raw).hexdigest()[:16]

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": _b64url(self.public_raw),
        }

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def prove(self, *, record_id: uuid.UUID, entry_id: uuid.UUID, document: bytes, time: str):
        """The signed statement that `document` existed at `time` in this record."""
        statement = {
            "v": 1,
            "type": PROOF_TYPE,
            "record_id": str(record_id),
            "entry_id": str(entry_id),
            "sha256": hashlib.sha256(document).hexdigest(),
            "time": time,
            "kid": self.kid,
            "alg": "EdDSA",
        }
        return {**statement, "signature": _b64url(self.key.sign(canonical(statement)))}


def verify_proof(proof: dict[str, Any], document: bytes, public_raw: bytes) -> bool:
    """Whether `proof` is a valid signature by `public_raw` over a statement whose SHA-256 is
    that of `document`. Any change to the document, the time or the ids fails."""
    try:
        statement = {k: v for k, v in proof.items() if k != "signature"}
        if statement.get("sha256") != hashlib.sha256(document).hexdigest():
            return False
        Ed25519PublicKey.from_public_bytes(public_raw).verify(
            _unb64url(str(proof["signature"])), canonical(statement)
        )
        return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
