"""Checks on the files reporters attach: size, type (declared and sniffed), file name.

Pure functions: the API layer reads the upload, these decide whether intake keeps it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field

from upstander.kit.errors import PayloadTooLarge, ProblemError, UnsupportedMediaType

MAX_FILENAME = 200
_UNSAFE = re.compile(r"[^\w .()+-]+", re.UNICODE)  # \w keeps letters of every script
_RUNS = re.compile(r"[ _]{2,}")
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
}


class EmptyFile(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"


@dataclass(frozen=True)
class NewAttachment:
    """A checked file, ready to be stored."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def media_type(declared: str | None) -> str:
    """`image/png; charset=x` → `image/png`; missing → `application/octet-stream`."""
    value = (declared or "").split(";", 1)[0].strip().lower()
    return value or "application/octet-stream"


def sanitise_filename(name: str | None, content_type: str) -> str:
    """A file name safe to store and show back: no directories, control or shell-special
    characters, at most 200 characters, never empty (falls back to `attachment.<ext>`)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _RUNS.sub("_", _UNSAFE.sub("_", base)).strip(" ._")
    if not base:
        base = "attachment" + _EXTENSIONS.get(content_type, "")
    if len(base) > MAX_FILENAME:
        stem, dot, extension = base.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            base = stem[: MAX_FILENAME - len(extension) - 1] + "." + extension
        else:
            base = base[:MAX_FILENAME]
    return base


def _looks_like(content_type: str, data: bytes) -> bool:
    """Whether the bytes plausibly are what the declared type says (magic numbers), so a
    handler never opens an executable that called itself a photo."""
    if content_type == "image/jpeg":
        return data.startswith(b"\xff\xd8\xff")
    if content_type == "image/png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if content_type == "application/pdf":
        return data.startswith(b"%PDF-")
    if content_type in ("audio/mp4", "video/mp4"):
        return data[4:8] == b"ftyp"
    if content_type == "audio/mpeg":
        return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] >= 0xE0)
    if content_type == "text/plain":
        return b"\x00" not in data
    return True  # a type an operator allowed that we have no signature for


def check_file(
    filename: str | None,
    declared_type: str | None,
    data: bytes,
    *,
    max_bytes: int,
    allowed_types: Collection[str],
) -> NewAttachment:
    """The file as intake keeps it, or `PayloadTooLarge` (413), `UnsupportedMediaType` (415),
    `EmptyFile` (422). `data` may be one byte longer than `max_bytes` (read with a limit)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"An attachment may be at most {max_bytes} bytes.")
    content_type = media_type(declared_type)
    if content_type not in allowed_types:
        raise UnsupportedMediaType(
            "This type of file cannot be attached.", allowed_types=sorted(allowed_types)
        )
    if not data:
        raise EmptyFile("The attached file is empty.")
    if not _looks_like(content_type, data):
        raise UnsupportedMediaType(
            "The file's content does not match its type.", allowed_types=sorted(allowed_types)
        )
    return NewAttachment(sanitise_filename(filename, content_type), content_type, data)
