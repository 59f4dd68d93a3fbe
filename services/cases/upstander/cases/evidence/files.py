"""Checks on evidence files and the headers they are served with: content type (declared and
sniffed), file name, `Content-Disposition`. Pure functions, no I/O.

The checks are intake's (`upstander.intake.reports.files`): a handler's evidence and a
reporter's attachment are opened by the same people, so they pass the same gate. A service
imports nothing from another, hence the copy; it belongs in the kit once a third user comes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from urllib.parse import quote

from upstander.kit.errors import ProblemError, UnsupportedMediaType

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
# Enough of a file's start for every signature `looks_like` knows.
SIGNATURE_BYTES = 16


class EmptyFile(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"

    def __init__(self) -> None:
        super().__init__(
            "The request did not validate.",
            errors=[{"field": "body.file", "message": "The file is empty."}],
        )


def media_type(declared: str | None) -> str:
    """`image/png; charset=x` → `image/png`; missing → `application/octet-stream`."""
    value = (declared or "").split(";", 1)[0].strip().lower()
    return value or "application/octet-stream"


def accepted_type(declared: str | None, allowed_types: Collection[str]) -> str:
    """The declared type of an upload if evidence may be of that type, else 415."""
    content_type = media_type(declared)
    if content_type not in allowed_types:
        raise UnsupportedMediaType(
            "This type of file cannot be added as evidence.", allowed_types=sorted(allowed_types)
        )
    return content_type


def check_content(
    content_type: str, piece: bytes, *, first: bool, allowed: Collection[str]
) -> None:
    """415 unless the bytes plausibly are what the declared type says (magic numbers on the
    first piece; no NUL anywhere in text), so a handler never opens an executable that called
    itself a photo."""
    if (first and not looks_like(content_type, piece)) or (
        content_type == "text/plain" and b"\x00" in piece
    ):
        raise UnsupportedMediaType(
            "The file's content does not match its type.", allowed_types=sorted(allowed)
        )


def looks_like(content_type: str, start: bytes) -> bool:
    """Whether a file's first bytes carry the signature of `content_type`."""
    if content_type == "image/jpeg":
        return start.startswith(b"\xff\xd8\xff")
    if content_type == "image/png":
        return start.startswith(b"\x89PNG\r\n\x1a\n")
    if content_type == "application/pdf":
        return start.startswith(b"%PDF-")
    if content_type in ("audio/mp4", "video/mp4"):
        return start[4:8] == b"ftyp"
    if content_type == "audio/mpeg":
        return start.startswith(b"ID3") or (
            len(start) > 1 and start[0] == 0xFF and start[1] >= 0xE0
        )
    return True  # text (checked for NUL bytes apart), or a type an operator allowed


def sanitise_filename(name: str | None, content_type: str) -> str:
    """A file name safe to store and show back: no directories, control or shell-special
    characters, at most 200 characters, never empty (falls back to `evidence.<ext>`)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _RUNS.sub("_", _UNSAFE.sub("_", base)).strip(" ._")
    if not base:
        base = "evidence" + _EXTENSIONS.get(content_type, "")
    if len(base) > MAX_FILENAME:
        stem, dot, extension = base.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            base = stem[: MAX_FILENAME - len(extension) - 1] + "." + extension
        else:
            base = base[:MAX_FILENAME]
    return base


def served_type(content_type: str, allowed_types: Collection[str]) -> str:
    """The `Content-Type` of a download: the stored type while it is still allowed (an
    operator may have removed it since), else `application/octet-stream`."""
    return content_type if content_type in allowed_types else "application/octet-stream"


def content_disposition(filename: str | None, content_type: str) -> str:
    """`attachment` (never `inline`) with an ASCII fallback name and the RFC 6266 / 5987
    `filename*` form for the real one, both from the sanitised name."""
    name = sanitise_filename(filename, content_type)
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
