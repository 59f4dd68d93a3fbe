"""Identifiers of the person an escrow entry names, normalised, and their keyed blind indexes.

Normal forms (what two reporters typing the same person differently agree on):

- `person`: a directory person id, as a lowercase UUID.
- `email`: NFKC, trimmed, lowercased, inner spaces removed (`" Ana.Diaz @Example.ORG"` →
  `ana.diaz@example.org`).
- `phone`: digits only with a leading `+`; `00` becomes `+`; separators ignored
  (`"+1 (555) 010-2030"` → `+15550102030`). Numbers without a country code are kept as their
  digits, so they only match the same digits.
- `handle`: the platform and the handle, lowercased, without a leading `@` or spaces
  (`"X", "@Ana_D"` → `x:ana_d`).

A blind index is HMAC-SHA256 under the deployment's `escrow_index_key` of `kind:normal`
(hex). The key is in the settings, never in the database: a database dump alone cannot test
a guessed name, and a guess through the API is rate-limited (docs/escrow.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from enum import StrEnum

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_NOISE = re.compile(r"[\s().\-/\u2010-\u2015]+")
_HANDLE = re.compile(r"^[a-z0-9_.\-]{1,100}$")
_PLATFORM = re.compile(r"^[a-z0-9_.\-]{1,40}$")


class IdentifierKind(StrEnum):
    PERSON = "person"
    EMAIL = "email"
    PHONE = "phone"
    HANDLE = "handle"


def _text(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def normalise(kind: IdentifierKind | str, value: str, platform: str | None = None) -> str:
    """The normal form of an identifier; `ValueError` (no value in the message) when it
    cannot be one of its kind."""
    kind = IdentifierKind(kind)
    text = _text(value)
    if kind == IdentifierKind.PERSON:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ValueError("not a person id") from None
    if kind == IdentifierKind.EMAIL:
        email = re.sub(r"\s+", "", text).lower()
        if not _EMAIL.match(email) or len(email) > 320:
            raise ValueError("not an email address")
        return email
    if kind == IdentifierKind.PHONE:
        phone = _PHONE_NOISE.sub("", text)
        if phone.startswith("00"):
            phone = "+" + phone[2:]
        digits = phone[1:] if phone.startswith("+") else phone
        if not digits.isdigit() or not 6 <= len(digits) <= 15:
            raise ValueError("not a phone number")
        return ("+" if phone.startswith("+") else "") + digits
    handle = re.sub(r"\s+", "", text).lower().lstrip("@")
    network = re.sub(r"\s+", "", _text(platform or "")).lower()
    if not _PLATFORM.match(network):
        raise ValueError("a handle needs its platform")
    if not _HANDLE.match(handle):
        raise ValueError("not a handle")
    return f"{network}:{handle}"


def blind_index(key: str, kind: IdentifierKind | str, normal: str) -> str:
    """HMAC-SHA256(key, "kind:normal") in hex: equal for equal identifiers, and nothing
    without the key."""
    message = f"{IdentifierKind(kind).value}:{normal}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def reporter_index(key: str, who: str) -> str:
    """A blind index of who reports (`person:<id>` or a normalised contact), in its own
    domain so it never equals an identifier's."""
    return hmac.new(key.encode("utf-8"), b"reporter|" + who.encode(), hashlib.sha256).hexdigest()


def contact_normal(contact: str) -> str:
    """A confidential reporter's contact in a comparable form: an email or a phone number
    normalised as identifiers are, anything else trimmed and lowercased."""
    for kind in (IdentifierKind.EMAIL, IdentifierKind.PHONE):
        try:
            return f"{kind.value}:{normalise(kind, contact)}"
        except ValueError:
            continue
    return "other:" + re.sub(r"\s+", " ", _text(contact)).lower()
