"""The signed case-export bundle: write one, and verify one with nothing but the public key.

A bundle is a ZIP file. Every member but two is listed in `manifest.json` with its SHA-256
and size; `manifest.sig` is a detached Ed25519 signature (the raw 64 bytes, RFC 8032) over
the exact bytes of `manifest.json`, by the deployment's export key, named in the manifest by
its `key_id`. The public keys are published as a JWK set (`GET /cases/v1/export-keys`).

So a bundle is valid exactly when the signature verifies under the named public key and the
ZIP holds the listed members, each with its listed size and hash, and nothing else: one byte
changed anywhere, a member removed, renamed or added, or a forged signature is a problem.

This module is pure (no web framework, no database): the export route writes with it, and
both `POST /cases/v1/exports/verify` and `python -m upstander.cases.verify` check with it.
The format is described for outsiders in docs/export.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
import zipfile
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT = "upstander-case-export"
FORMAT_VERSION = 1
ALGORITHM = "Ed25519"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNATURE_BYTES = 64
SEED_BYTES = 32

# Bounds that keep a hostile upload from costing unbounded memory or time.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_MEMBERS = 100_000
CHUNK = 1024 * 1024

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


# ----------------------------------------------------------------------------- keys


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_seed(value: str) -> bytes:
    """A raw Ed25519 seed from its base64 (standard or URL-safe alphabet); `ValueError` unless
    it is exactly 32 bytes."""
    text = value.strip()
    try:
        seed = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the export signing key is not base64") from exc
    if len(seed) != SEED_BYTES:
        raise ValueError(f"the export signing key must be {SEED_BYTES} bytes (a raw Ed25519 seed)")
    return seed


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(x: str) -> str:
    """The RFC 7638 JWK thumbprint of an Ed25519 public key (its `x`): the default key id."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_bytes(key)),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
    }


@dataclass(frozen=True)
class SigningKey:
    """The deployment's export key: signs manifests under `kid`."""

    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_seed(cls, seed_b64: str, kid: str | None = None) -> SigningKey:
        private = Ed25519PrivateKey.from_private_bytes(decode_seed(seed_b64))
        x = b64url(public_bytes(private.public_key()))
        return cls(private=private, kid=kid or thumbprint(x))

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, str]:
        return public_jwk(self.public_key, self.kid)

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(kid={self.kid!r})"


def parse_retired_keys(spec: str) -> dict[str, Ed25519PublicKey]:
    """`kid:base64url(public key)` pairs separated by commas: keys no longer signing whose
    bundles must keep verifying. `ValueError` on a malformed entry."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, x = entry.partition(":")
        if not sep or not kid or not x:
            raise ValueError("retired export keys are `kid:base64url-public-key`, comma separated")
        try:
            raw = b64url_decode(x.strip())
            keys[kid.strip()] = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"retired export key {kid!r} is not a 32-byte Ed25519 key") from exc
    return keys


def keys_from_jwks(document: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWK set (`{"keys": [...]}`) or of a single JWK, by `kid`.
    Other key types are skipped; `ValueError` when none is usable."""
    entries = document.get("keys") if isinstance(document, dict) and "keys" in document else None
    if entries is None:
        entries = [document]
    if not isinstance(entries, list):
        raise ValueError("a JWK set has a `keys` list")
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in entries:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        x, kid = jwk.get("x"), jwk.get("kid")
        if not isinstance(x, str):
            continue
        try:
            key = Ed25519PublicKey.from_public_bytes(b64url_decode(x))
        except (binascii.Error, ValueError):
            continue
        keys[kid if isinstance(kid, str) and kid else thumbprint(x)] = key
    if not keys:
        raise ValueError("no Ed25519 public key (kty OKP, crv Ed25519) in the key set")
    return keys


# ----------------------------------------------------------------------------- writing


def sanitise_filename(name: str | None, fallback: str = "file") -> str:
    """A file name safe as the last part of a ZIP path on any system: ASCII letters, digits,
    `.`, `_`, `-`; no leading dot; at most 120 characters (the extension kept)."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE_NAME.sub("_", text.replace("/", "_").replace("\\", "_")).strip("._-")
    if not text:
        return fallback
    if len(text) > _MAX_NAME:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= 16 and stem:
            text = stem[: _MAX_NAME - len(extension) - 1] + "." + extension
        else:
            text = text[:_MAX_NAME]
    return text


def json_bytes(value: Any) -> bytes:
    """How the bundle's JSON members are written: UTF-8, sorted keys, two-space indents."""
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _safe_member_path(path: str) -> bool:
    parts = path.split("/")
    return (
        bool(path)
        and len(path) <= 255
        and all(part and part not in (".", "..") and "\\" not in part for part in parts)
        and path not in (MANIFEST, SIGNATURE)
    )


@dataclass
class Member:
    path: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


class BundleWriter:
    """Writes a bundle into a seekable binary file, member by member (JSON members whole,
    files from an async stream of chunks), hashing as it goes; `finish` adds the manifest and
    its signature. Nothing but the member being written is held in memory."""

    def __init__(self, target: IO[bytes], *, written_at: datetime) -> None:
        self._zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self._date_time = written_at.timetuple()[:6]
        self.members: list[Member] = []
        self._paths: set[str] = set()

    def _info(self, path: str, compress: int) -> zipfile.ZipInfo:
        if not _safe_member_path(path) or path in self._paths:
            raise ValueError(f"bad or repeated bundle member path: {path!r}")
        self._paths.add(path)
        info = zipfile.ZipInfo(path, date_time=self._date_time)  # type: ignore[arg-type]
        info.compress_type = compress
        info.external_attr = 0o644 << 16
        return info

    def add_bytes(self, path: str, data: bytes) -> None:
        self._zip.writestr(self._info(path, zipfile.ZIP_DEFLATED), data)
        self.members.append(Member(path, len(data), hashlib.sha256(data).hexdigest()))

    def add_json(self, path: str, value: Any) -> None:
        self.add_bytes(path, json_bytes(value))

    async def add_stream(
        self, path: str, chunks: AsyncIterable[bytes], *, compress: bool = False
    ) -> Member:
        """A member from chunks. Stored uncompressed unless `compress`: files are mostly
        compressed already (images, PDFs), and deflating them again would only cost CPU."""
        digest, size = hashlib.sha256(), 0
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with self._zip.open(self._info(path, method), "w", force_zip64=True) as out:
            async for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        member = Member(path, size, digest.hexdigest())
        self.members.append(member)
        return member

    def finish(self, header: Mapping[str, Any], key: SigningKey) -> bytes:
        """Write `manifest.json` (the `header` fields, the key id and every member) and
        `manifest.sig`; close the ZIP. Returns the manifest's bytes."""
        manifest = {
            **header,
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "algorithm": ALGORITHM,
            "key_id": key.kid,
            "members": [member.as_dict() for member in self.members],
        }
        data = json_bytes(manifest)
        for path, content in ((MANIFEST, data), (SIGNATURE, key.sign(data))):
            info = zipfile.ZipInfo(path, date_time=self._date_time)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED if path == MANIFEST else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            self._zip.writestr(info, content)
        self._zip.close()
        return data

    def abort(self) -> None:
        self._zip.close()


# ----------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Problem:
    """Why a bundle is not valid: a stable `code`, the member concerned, and a sentence."""

    code: str
    detail: str
    path: str | None = None

    def __str__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.detail}"


@dataclass
class Verification:
    valid: bool
    problems: list[Problem] = field(default_factory=list)
    # The manifest's header (everything but the member list) when it could be read.
    manifest: dict[str, Any] | None = None


class _Budget:
    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def spend(self, size: int) -> bool:
        if self.left is None:
            return True
        self.left -= size
        return self.left >= 0


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    """A member's bytes if it has at most `cap` of them (None otherwise)."""
    if info.file_size > cap:
        return None
    with archive.open(info) as stream:
        data = stream.read(cap + 1)
    return data if len(data) <= cap else None


def _hash_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> tuple[int, str]:
    """(bytes read, SHA-256) of a member, reading at most `size + 1` bytes: a member longer
    than it claims is caught without reading all of it."""
    digest, read = hashlib.sha256(), 0
    with archive.open(info) as stream:
        while read <= size:
            chunk = stream.read(min(CHUNK, size + 1 - read))
            if not chunk:
                break
            digest.update(chunk)
            read += len(chunk)
    return read, digest.hexdigest()


def _listed_members(manifest: dict[str, Any], problems: list[Problem]) -> list[Member] | None:
    entries = manifest.get("members")
    if not isinstance(entries, list):
        problems.append(Problem("manifest_invalid", "The manifest has no `members` list."))
        return None
    members: list[Member] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        path = entry.get("path") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        if (
            not isinstance(path, str)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(sha, str)
            or not _SHA256.match(sha)
        ):
            problems.append(
                Problem("manifest_invalid", f"Member entry {index} needs path, size and sha256.")
            )
            continue
        if path in seen or path in (MANIFEST, SIGNATURE):
            problems.append(
                Problem("manifest_invalid", "The manifest lists this path twice.", path)
            )
            continue
        seen.add(path)
        members.append(Member(path, size, sha))
    return members


def _check_signature(
    manifest_bytes: bytes,
    signature: bytes,
    manifest: dict[str, Any] | None,
    keys: Mapping[str, Ed25519PublicKey],
    problems: list[Problem],
) -> None:
    if len(signature) != SIGNATURE_BYTES:
        problems.append(
            Problem("signature_invalid", "The signature is not 64 bytes of Ed25519.", SIGNATURE)
        )
        return
    kid = manifest.get("key_id") if manifest is not None else None
    if manifest is not None and manifest.get("algorithm") != ALGORITHM:
        problems.append(Problem("manifest_invalid", "The manifest's algorithm is not Ed25519."))
    if isinstance(kid, str):
        key = keys.get(kid)
        if key is None:
            problems.append(
                Problem(
                    "unknown_key",
                    f"The bundle names key {kid!r}, which is not among the public keys given.",
                    SIGNATURE,
                )
            )
            return
        candidates: Iterable[Ed25519PublicKey] = (key,)
    else:
        candidates = keys.values()
    for candidate in candidates:
        try:
            candidate.verify(signature, manifest_bytes)
            return
        except InvalidSignature:
            continue
    problems.append(
        Problem(
            "signature_invalid",
            "The signature does not match the manifest under the export key.",
            SIGNATURE,
        )
    )


def verify_bundle(
    source: BinaryIO | str | Path,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    max_total_bytes: int | None = None,
) -> Verification:
    """Check a bundle against `keys` (public keys by `kid`, e.g. from `keys_from_jwks`).
    Never raises on bad input: every fault is a `Problem`. `max_total_bytes` bounds how much
    is decompressed and hashed (for uploads)."""
    problems: list[Problem] = []
    try:
        with zipfile.ZipFile(source) as archive:
            return _verify_archive(archive, keys, problems, _Budget(max_total_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        problems.append(Problem("not_a_bundle", f"Not a readable ZIP file ({type(exc).__name__})."))
        return Verification(valid=False, problems=problems)


def _verify_archive(
    archive: zipfile.ZipFile,
    keys: Mapping[str, Ed25519PublicKey],
    problems: list[Problem],
    budget: _Budget,
) -> Verification:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        problems.append(Problem("too_large", f"More than {MAX_MEMBERS} members."))
        return Verification(valid=False, problems=problems)
    by_path: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in by_path:
            # Two members of one name could show one file to one tool, the other to another.
            problems.append(
                Problem(
                    "duplicate_member", "The ZIP holds two members of this name.", info.filename
                )
            )
        by_path[info.filename] = info

    manifest_info, signature_info = by_path.get(MANIFEST), by_path.get(SIGNATURE)
    if manifest_info is None:
        problems.append(Problem("manifest_missing", "There is no manifest.json.", MANIFEST))
        return Verification(valid=False, problems=problems)
    manifest_bytes = _read_small(archive, manifest_info, MAX_MANIFEST_BYTES)
    if manifest_bytes is None:
        problems.append(Problem("too_large", "The manifest is too large.", MANIFEST))
        return Verification(valid=False, problems=problems)

    manifest: dict[str, Any] | None = None
    try:
        parsed = json.loads(manifest_bytes)
        if isinstance(parsed, dict):
            manifest = parsed
        else:
            problems.append(Problem("manifest_invalid", "The manifest is not a JSON object."))
    except (UnicodeDecodeError, ValueError):
        problems.append(Problem("manifest_invalid", "The manifest is not JSON.", MANIFEST))

    if signature_info is None:
        problems.append(Problem("signature_missing", "There is no manifest.sig.", SIGNATURE))
    else:
        signature = _read_small(archive, signature_info, 1024) or b""
        _check_signature(manifest_bytes, signature, manifest, keys, problems)

    if manifest is None:
        return Verification(valid=False, problems=problems)
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        problems.append(
            Problem("manifest_invalid", f"Not a {FORMAT} manifest of version {FORMAT_VERSION}.")
        )
    header = {key: value for key, value in manifest.items() if key != "members"}
    listed = _listed_members(manifest, problems)
    if listed is None:
        return Verification(valid=False, problems=problems, manifest=header)

    for member in listed:
        found = by_path.get(member.path)
        if found is None:
            problems.append(Problem("member_missing", "Listed but not in the ZIP.", member.path))
            continue
        if found.file_size != member.size:
            problems.append(
                Problem(
                    "member_modified",
                    f"{found.file_size} bytes where the manifest says {member.size}.",
                    member.path,
                )
            )
            continue
        if not budget.spend(member.size):
            problems.append(Problem("too_large", "The bundle is too large to check here."))
            break
        try:
            read, digest = _hash_member(archive, found, member.size)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            problems.append(
                Problem("member_corrupt", f"Unreadable ({type(exc).__name__}).", member.path)
            )
            continue
        if read != member.size or digest != member.sha256:
            problems.append(
                Problem("member_modified", "Its SHA-256 differs from the manifest's.", member.path)
            )

    listed_paths = {member.path for member in listed}
    for path in by_path:
        if path not in listed_paths and path not in (MANIFEST, SIGNATURE):
            problems.append(Problem("member_unlisted", "In the ZIP but not in the manifest.", path))
    return Verification(valid=not problems, problems=problems, manifest=header)
