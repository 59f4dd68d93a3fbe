"""Proof Key for Code Exchange (RFC 7636), S256 only: `plain` would hand the verifier to
whoever sees the authorization request, so it is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHOD = "S256"
# RFC 7636 §4.1: 43 to 128 unreserved characters. A S256 challenge is 43 base64url characters.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")

__all__ = ["METHOD", "challenge_of", "valid_challenge", "valid_verifier", "verify"]


def challenge_of(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))), unpadded (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str | None) -> bool:
    return bool(challenge) and _CHALLENGE.fullmatch(challenge or "") is not None


def valid_verifier(verifier: str | None) -> bool:
    return bool(verifier) and _VERIFIER.fullmatch(verifier or "") is not None


def verify(verifier: str | None, challenge: str) -> bool:
    """Does `verifier` answer `challenge`? (constant-time comparison)"""
    if not valid_verifier(verifier):
        return False
    return hmac.compare_digest(challenge_of(verifier or ""), challenge)
