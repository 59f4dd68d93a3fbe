"""Receipt codes: drawing, showing, normalising, looking up and verifying them.

A code is 20 Crockford base32 characters drawn with `secrets` (100 bits), shown once as four
groups of five (``K7QW2-9XMDA-...``). Intake never stores the code, only two derivations:

- a lookup key, HMAC-SHA256 under the deployment's `receipt_key` (hex), so a code finds its
  report with one indexed query and a database dump alone cannot test guesses;
- a slow salted hash (scrypt, n=2**14, r=8, p=1), ``scrypt$salt_b64$hash_b64``, checked in
  constant time, so even someone holding the lookup key pays scrypt for every guess.

What people type is forgiven before any of that: case, spaces and dashes do not matter, and
O, I and L read as 0, 1 and 1 (Crockford's rule).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 20  # 20 x 5 bits = 100 bits of entropy
GROUP_LENGTH = 5

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")
_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_ALPHABET_SET = frozenset(ALPHABET)
# Hashed when there is nothing to compare with, so a miss costs as much time as a hit.
_DECOY_SALT = secrets.token_bytes(SALT_BYTES)


def new_code() -> str:
    """A fresh code in canonical form (20 characters, no dashes)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def display(code: str) -> str:
    """The code as shown to the reporter: `K7QW2-9XMDA-4RT0P-ZZ81C`."""
    return "-".join(code[i : i + GROUP_LENGTH] for i in range(0, len(code), GROUP_LENGTH))


def normalise(typed: str) -> str | None:
    """The canonical code for what someone typed, or None when it cannot be a code."""
    code = _SEPARATORS.sub("", typed).upper().translate(_CONFUSABLES)
    if len(code) != CODE_LENGTH or not _ALPHABET_SET.issuperset(code):
        return None
    return code


def lookup_key(code: str, receipt_key: str) -> str:
    """HMAC-SHA256 of a canonical code under the deployment's receipt key, in hex."""
    return hmac.new(receipt_key.encode("utf-8"), code.encode("ascii"), hashlib.sha256).hexdigest()


def _scrypt(code: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        code.encode("ascii"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES
    )


def hash_code(code: str) -> str:
    """`scrypt$salt_b64$hash_b64` of a canonical code, with a fresh random salt. Slow on
    purpose (tens of milliseconds): call it off the event loop."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(code, salt)
    return "scrypt${}${}".format(
        base64.b64encode(salt).decode("ascii"), base64.b64encode(digest).decode("ascii")
    )


def verify_code(code: str | None, stored: str | None) -> bool:
    """Whether a canonical code matches a stored hash, compared in constant time. With no code
    or no stored hash it still spends one scrypt, so every answer takes about as long."""
    if code is None or stored is None:
        _scrypt(code or "", _DECOY_SALT)
        return False
    try:
        scheme, salt_b64, hash_b64 = stored.split("$")
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
    except ValueError:
        _scrypt(code, _DECOY_SALT)
        return False
    if scheme != "scrypt":
        _scrypt(code, _DECOY_SALT)
        return False
    return hmac.compare_digest(_scrypt(code, salt), expected)
