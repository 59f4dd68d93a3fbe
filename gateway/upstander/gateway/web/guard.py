"""What keeps the reporter page safe without accounts: the CSRF check (a signed double submit),
the cookies it sets, and the sealed hand-over of a receipt code from the submission to the
page that shows it once.

- CSRF: a random value in an HttpOnly, SameSite=Strict cookie, and in every form an HMAC of
  it under a key derived from the deployment's service secret. A POST passes only when the
  field is the HMAC of the cookie it came with: another site can neither read the cookie nor
  plant one it could sign.
- The follow-up session: the reporter token `POST /auth/receipt` would give (never the code),
  in an HttpOnly, SameSite=Strict cookie scoped to `/r/{org}` that lives as long as the token.
- The receipt hand-over: after a report is sent the browser is redirected (303) to the receipt
  page, and the code travels in a session cookie scoped to that page, sealed (AES-GCM) under
  the deployment's key-encryption key with the kit's `Keyring`, with a deadline inside the
  seal. The receipt page shows it and deletes the cookie in the same answer, so the code is
  never in a URL, in the history, in a log or in a row.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from upstander.kit.crypto import DecryptionError, Keyring

CSRF_COOKIE = "upstander_csrf"
SESSION_COOKIE = "upstander_reporter"
RECEIPT_COOKIE = "upstander_receipt"
CSRF_FIELD = "csrf_token"
RECEIPT_SEAL_SECONDS = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secure_cookies(request: Request, settings: Any) -> bool:
    """Secure cookies over HTTPS, and always in production (behind a TLS terminator)."""
    return request.url.scheme == "https" or getattr(settings, "mode", "dev") == "production"


def set_cookie(
    response: Response,
    request: Request,
    settings: Any,
    name: str,
    value: str,
    *,
    path: str,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=secure_cookies(request, settings),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, settings: Any, name: str, path: str) -> None:
    response.delete_cookie(
        name, path=path, secure=secure_cookies(request, settings), httponly=True, samesite="strict"
    )


class Csrf:
    """Signed double-submit tokens, keyed from the deployment's service secret."""

    def __init__(self, secret: str) -> None:
        self.key = hashlib.sha256(b"upstander reporter page csrf\x00" + secret.encode()).digest()

    def sign(self, cookie_value: str) -> str:
        return hmac.new(self.key, cookie_value.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def new_cookie_value() -> str:
        return secrets.token_urlsafe(32)

    def valid(self, cookie_value: str | None, field_value: str | None) -> bool:
        if not cookie_value or not field_value or len(cookie_value) > 100:
            return False
        return hmac.compare_digest(self.sign(cookie_value), field_value)


class ReceiptSeal:
    """Seals a receipt code for its one trip from the submission to the receipt page."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @staticmethod
    def _aad(org: str) -> bytes:
        return b"upstander reporter page receipt\x00" + org.encode()

    def seal(self, org: str, code: str, *, now: float | None = None) -> str:
        deadline = int((now if now is not None else time.time()) + RECEIPT_SEAL_SECONDS)
        kek_id, wrapped = self.keyring.wrap(f"{deadline}|{code}".encode(), self._aad(org))
        return f"{kek_id}.{_b64(wrapped)}"

    def open(self, org: str, sealed: str | None, *, now: float | None = None) -> str | None:
        if not sealed or len(sealed) > 400:
            return None
        kek_id, _, body = sealed.partition(".")
        try:
            plain = self.keyring.unwrap(kek_id, _unb64(body), self._aad(org)).decode()
            deadline, _, code = plain.partition("|")
            if int(deadline) < (now if now is not None else time.time()):
                return None
        except (DecryptionError, ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return code or None
