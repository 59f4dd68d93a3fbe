"""Evidence of a case: storing an upload sealed in chunks as it streams in, listing and
reading items, streaming their bytes back, and the chain of custody. Callers pass a case they
already may see; functions only flush.

For the export: `evidence_for_case`, `iter_evidence_bytes` and `record_custody` (with
`CustodyAction.EXPORTED`) are what a case-file export needs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases.service import actor_of
from upstander.cases.evidence.files import (
    EmptyFile,
    accepted_type,
    check_content,
    sanitise_filename,
)
from upstander.cases.evidence.schemas import EvidenceFieldsIn
from upstander.cases.models import (
    Case,
    CustodyAction,
    EvidenceChunk,
    EvidenceCustody,
    EvidenceItem,
)
from upstander.cases.problems import InvalidRequest
from upstander.kit.auth import Principal
from upstander.kit.crypto import Vault
from upstander.kit.errors import NotFound, PayloadTooLarge
from upstander.kit.pagination import PageParams, paginate

log = logging.getLogger("upstander.cases.evidence")

# Plaintext bytes per sealed chunk: what a download holds in memory at once.
CHUNK_BYTES = 1024 * 1024
# How far ahead of the server's clock `collected_at` may be (the uploader's clock may run fast).
CLOCK_SKEW = timedelta(minutes=5)
NO_SUCH_EVIDENCE = "No such evidence on this case."


class EvidenceUnavailable(NotFound):
    """The item's bytes cannot be read: the case's data was destroyed (crypto-shredded)."""


class EvidenceCorrupted(Exception):
    """The stored chunks do not add up to the size and hash taken on upload (a bug or
    tampering: never served)."""


# ----------------------------------------------------------------------------- upload


class EvidenceWriter:
    """Receives one uploaded file as it arrives: checks its type, counts and hashes it, and
    stores it sealed under the case's key in chunks of `CHUNK_BYTES`, so neither the whole
    file nor any unsealed copy of it is ever kept. The item row is written first (chunks
    refer to it) and completed by `finish()`; an error anywhere rolls the whole upload back
    with the request's transaction."""

    def __init__(
        self,
        session: AsyncSession,
        case: Case,
        principal: Principal,
        *,
        vault: Vault,
        max_bytes: int,
        allowed_types: Collection[str],
        now: datetime,
    ) -> None:
        self.session = session
        self.case = case
        self.principal = principal
        self.vault = vault
        self.max_bytes = max_bytes
        self.allowed_types = allowed_types
        self.now = now
        self.item: EvidenceItem | None = None
        self._digest = hashlib.sha256()
        self._buffer = bytearray()
        self._size = 0
        self._chunks = 0

    async def start(self, filename: str | None, declared_type: str | None) -> None:
        content_type = accepted_type(declared_type, self.allowed_types)
        await self.vault.create_key(self.session, org_id=self.case.org_id, owner_id=self.case.id)
        kind, actor_id = actor_of(self.principal)
        self.item = EvidenceItem(
            org_id=self.case.org_id,
            case_id=self.case.id,
            filename=sanitise_filename(filename, content_type),
            content_type=content_type,
            size=0,
            chunk_count=0,
            collected_at=self.now,  # the form's value is set by finish()
            uploaded_by_kind=kind,
            uploaded_by_id=actor_id,
            created_at=self.now,
            updated_at=self.now,
        )
        self.session.add(self.item)
        await self.session.flush()

    async def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.max_bytes:
            raise PayloadTooLarge(f"An evidence file may be at most {self.max_bytes} bytes.")
        self._digest.update(data)
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            await self._store(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]

    async def finish(self, form: EvidenceFieldsIn) -> EvidenceItem:
        """Store the last chunk and the form's fields; record the `uploaded` custody entry."""
        item = self.item
        assert item is not None, "finish() before start()"
        collected_at = form.collected_at.astimezone(self.now.tzinfo)
        if collected_at > self.now + CLOCK_SKEW:
            raise InvalidRequest("body.collected_at", "Cannot be in the future.")
        if self._buffer:
            await self._store(bytes(self._buffer))
            self._buffer.clear()
        if self._size == 0:
            raise EmptyFile()
        item.size = self._size
        item.chunk_count = self._chunks
        item.sha256 = self._digest.hexdigest()
        item.description = form.description
        item.source = form.source
        item.collected_at = collected_at
        item.updated_at = self.now
        await self.session.flush()
        await record_custody(self.session, item, self.principal, CustodyAction.UPLOADED, self.now)
        return item

    async def _store(self, piece: bytes) -> None:
        assert self.item is not None
        check_content(
            self.item.content_type, piece, first=self._chunks == 0, allowed=self.allowed_types
        )
        chunk = EvidenceChunk(
            org_id=self.case.org_id,
            evidence_id=self.item.id,
            case_id=self.case.id,
            seq=self._chunks,
            data=piece,
            created_at=self.now,
        )
        self.session.add(chunk)
        await self.session.flush()
        # Sealed and written: let it go, so an upload holds one chunk in memory at a time.
        self.session.expunge(chunk)
        self._chunks += 1


# ----------------------------------------------------------------------------- reading


async def list_evidence(
    session: AsyncSession, case: Case, page: PageParams
) -> tuple[list[EvidenceItem], str | None]:
    """A case's evidence, oldest first, one keyset page at a time."""
    statement = select(EvidenceItem).where(
        EvidenceItem.org_id == case.org_id, EvidenceItem.case_id == case.id
    )
    return await paginate(session, statement, EvidenceItem, page)


async def evidence_for_case(session: AsyncSession, case: Case) -> list[EvidenceItem]:
    """Every item of a case, oldest first (for the export; its bytes with
    `iter_evidence_bytes`)."""
    rows = await session.scalars(
        select(EvidenceItem)
        .where(EvidenceItem.org_id == case.org_id, EvidenceItem.case_id == case.id)
        .order_by(EvidenceItem.created_at, EvidenceItem.id)
    )
    return list(rows)


async def get_evidence(session: AsyncSession, case: Case, evidence_id: uuid.UUID) -> EvidenceItem:
    """One item of the case, or 404 (an id of another case is as unknown as a made-up one)."""
    item = await session.scalar(
        select(EvidenceItem).where(
            EvidenceItem.id == evidence_id,
            EvidenceItem.org_id == case.org_id,
            EvidenceItem.case_id == case.id,
        )
    )
    if item is None:
        raise NotFound(NO_SUCH_EVIDENCE)
    return item


def is_shredded(item: EvidenceItem) -> bool:
    """Whether the case's data key is gone: every sealed field then reads back as None (the
    hash is always set on a stored item, so it tells)."""
    return item.sha256 is None


async def iter_evidence_bytes(session: AsyncSession, item: EvidenceItem) -> AsyncIterator[bytes]:
    """The item's bytes, decrypted one chunk at a time (at most `CHUNK_BYTES` in memory).

    Checks what the sealed chunks cannot check one by one (their order and completeness): the
    size and SHA-256 are compared before the last chunk is handed out, so a stream that does
    not match the upload ends early instead (raises `EvidenceCorrupted`), and a reader that
    trusts `Content-Length` or the hash sees it. Raises `EvidenceUnavailable` if the case's
    data was destroyed."""
    if is_shredded(item):
        raise EvidenceUnavailable("This evidence was destroyed with the case's data.")
    expected = str(item.sha256)
    digest = hashlib.sha256()
    size = 0
    for seq in range(item.chunk_count):
        data = await session.scalar(
            select(EvidenceChunk.data).where(
                EvidenceChunk.evidence_id == item.id, EvidenceChunk.seq == seq
            )
        )
        if data is None:
            if seq == 0:
                raise EvidenceUnavailable("This evidence was destroyed with the case's data.")
            log.error("evidence chunk missing", extra={"evidence_id": str(item.id), "seq": seq})
            raise EvidenceCorrupted(f"evidence {item.id}: chunk {seq} is missing")
        piece = bytes(data)
        digest.update(piece)
        size += len(piece)
        if seq == item.chunk_count - 1 and (
            size != item.size or not hmac.compare_digest(digest.hexdigest(), expected)
        ):
            log.error("evidence does not match its hash", extra={"evidence_id": str(item.id)})
            raise EvidenceCorrupted(f"evidence {item.id}: bytes do not match the stored hash")
        yield piece


# ----------------------------------------------------------------------------- custody


async def record_custody(
    session: AsyncSession,
    item: EvidenceItem,
    principal: Principal,
    action: CustodyAction,
    now: datetime,
    *,
    note: str | None = None,
) -> EvidenceCustody:
    """Add a link to the item's chain of custody: `principal` did `action` at `now`."""
    kind, actor_id = actor_of(principal)
    entry = EvidenceCustody(
        org_id=item.org_id,
        case_id=item.case_id,
        evidence_id=item.id,
        action=action,
        actor_kind=kind,
        actor_id=actor_id,
        note=note,
        created_at=now,
        updated_at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


async def custody_of(session: AsyncSession, item: EvidenceItem) -> list[EvidenceCustody]:
    """The item's whole chain of custody, oldest first."""
    rows = await session.scalars(
        select(EvidenceCustody)
        .where(EvidenceCustody.evidence_id == item.id, EvidenceCustody.org_id == item.org_id)
        .order_by(EvidenceCustody.created_at, EvidenceCustody.id)
    )
    return list(rows)
