"""Bring reporters' files from intake into the case file, sealed under the case's key.

Intake keeps an attachment's bytes under the report's key; the case needs its own copy, under
the case's key, so that shredding the case shreds its files too and no download ever has to
reach into intake. The move:

1. When cases takes in `upstander.report.submitted` or `upstander.report.attachment_added`,
   it records the attachment's metadata and a *pending* `CaseAttachmentFile` row in the same
   transaction as the event's inbox entry (`service.queue_attachment_files`): once the event
   is acknowledged, the fetch cannot be forgotten.
2. `AttachmentFetcher` claims due pending rows (with a lease, `FOR UPDATE SKIP LOCKED` on
   PostgreSQL, so replicas share the work), asks intake's internal route
   `GET /intake/internal/reports/{report_id}/attachments/{attachment_id}/content` with the
   cases service's own service token, checks size and SHA-256, and stores the bytes as
   `CaseAttachmentChunk` rows of at most 1 MiB (`EncryptedBytes`), then marks the row
   `stored`. The HTTP call happens outside any database transaction.
3. A failure (intake down, a 5xx, a token problem, a bad hash) is retried with exponential
   backoff, capped at an hour, for as long as it takes. Only intake saying the file is gone
   (404/410) several times in a row gives up, as `unavailable`.

It runs after the consuming transaction commits (woken then) and polls as a fallback, in the
background whenever the outbox relay does (`relay_background`); tests call `run_once()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.cases.models import (
    AttachmentFileStatus,
    Case,
    CaseAttachment,
    CaseAttachmentChunk,
    CaseAttachmentFile,
    CaseStatus,
    ReporterMode,
)
from upstander.cases.report.service import CHUNK_BYTES
from upstander.kit.clock import Clock, for_reporter
from upstander.kit.loops import PeriodicTask
from upstander.kit.observability import COARSE_TIME

log = logging.getLogger("upstander.cases.attachments")

# Bigger than anything intake accepts; a guard against a runaway response, not a policy.
MAX_FILE_BYTES = 512 * 1024 * 1024
# Intake answering "no such attachment" this many times means it is gone (shredded there).
GIVE_UP_AFTER_GONE = 5
BASE_DELAY_SECONDS = 5.0
MAX_DELAY_SECONDS = 3600.0
LEASE_SECONDS = 300.0
BATCH = 20


class TokenSource(Protocol):
    """What `kit.events.ServiceTokens` offers: a cached service token, and a way to drop it."""

    async def token(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class _Claimed:
    file_id: uuid.UUID
    org_id: uuid.UUID
    case_id: uuid.UUID
    case_attachment_id: uuid.UUID
    report_id: uuid.UUID
    attachment_id: uuid.UUID
    reporter_mode: str


class FetchFailed(Exception):
    """A fetch that did not bring the file; `code` is what `last_error` records (no content)."""

    def __init__(self, code: str, *, gone: bool = False) -> None:
        super().__init__(code)
        self.code = code[:64]
        self.gone = gone


def backoff(attempts: int) -> timedelta:
    """Exponential, capped at an hour, with jitter in [50%, 100%] of the step."""
    step = min(BASE_DELAY_SECONDS * 2 ** max(0, attempts - 1), MAX_DELAY_SECONDS)
    return timedelta(seconds=step * random.uniform(0.5, 1.0))  # noqa: S311 - not a secret


class AttachmentFetcher:
    """Fetches pending attachment files from intake (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        http: httpx.AsyncClient,
        tokens: TokenSource,
        intake_url: str,
        poll_seconds: float = 30.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.http = http
        self.tokens = tokens
        self.intake_url = intake_url.rstrip("/")
        self.poll_seconds = poll_seconds
        self._is_postgres = sessionmaker.kw["bind"].dialect.name == "postgresql"
        self._lock = asyncio.Lock()
        # The kit's loop: again at once while a pass found work, woken by commits.
        self._loop = PeriodicTask("cases-attachment-fetcher", self.run_once, interval=poll_seconds)

    # -- waking and looping -----------------------------------------------------------------

    def wake(self) -> None:
        self._loop.wake()

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the loop once `session` commits (the pending rows exist from then on)."""
        self._loop.wake_after_commit(session.sync_session)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    # -- one pass -----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim and try one batch of due files; returns how many were tried."""
        async with self._lock:
            claimed = await self._claim()
            for item in claimed:
                await self._fetch_and_store(item)
            return len(claimed)

    async def _claim(self) -> list[_Claimed]:
        now = self.clock.now()
        statement = (
            select(
                CaseAttachmentFile.id,
                CaseAttachmentFile.org_id,
                CaseAttachmentFile.case_id,
                CaseAttachmentFile.case_attachment_id,
                Case.report_id,
                CaseAttachment.attachment_id,
                Case.reporter_mode,
            )
            .join(CaseAttachment, CaseAttachment.id == CaseAttachmentFile.case_attachment_id)
            .join(Case, Case.id == CaseAttachmentFile.case_id)
            .where(
                CaseAttachmentFile.status == AttachmentFileStatus.PENDING,
                CaseAttachmentFile.next_attempt_at <= now,
                (CaseAttachmentFile.locked_until.is_(None))
                | (CaseAttachmentFile.locked_until < now),
                Case.status != CaseStatus.DELETED,
            )
            .order_by(CaseAttachmentFile.next_attempt_at, CaseAttachmentFile.id)
            .limit(BATCH)
        )
        if self._is_postgres:
            statement = statement.with_for_update(skip_locked=True, of=CaseAttachmentFile)
        async with self.sessionmaker() as session, session.begin():
            rows = [_Claimed(*row) for row in await session.execute(statement)]
            if rows:
                await session.execute(
                    update(CaseAttachmentFile)
                    .where(CaseAttachmentFile.id.in_([r.file_id for r in rows]))
                    .values(locked_until=now + timedelta(seconds=LEASE_SECONDS))
                )
        return rows

    async def _fetch_and_store(self, item: _Claimed) -> None:
        try:
            chunks, digest = await self._fetch(item)
        except FetchFailed as failure:
            await self._record_failure(item, failure)
            return
        except Exception as error:  # never let one file stop the others
            log.exception("attachment fetch failed")
            await self._record_failure(item, FetchFailed(type(error).__name__))
            return
        await self._store(item, chunks, digest)

    async def _fetch(self, item: _Claimed) -> tuple[list[bytes], str]:
        url = (
            f"{self.intake_url}/intake/internal/reports/{item.report_id}"
            f"/attachments/{item.attachment_id}/content"
        )
        for _ in range(2):  # one retry with a fresh token after a 401
            try:
                token = await self.tokens.token()
            except httpx.HTTPError as error:
                raise FetchFailed(f"token: {type(error).__name__}") from None
            try:
                async with self.http.stream(
                    "GET",
                    url,
                    params={"org_id": str(item.org_id)},
                    headers={"authorization": f"Bearer {token}"},
                ) as response:
                    if response.status_code == 401:
                        self.tokens.invalidate()
                        continue
                    if response.status_code in (404, 410):
                        raise FetchFailed(f"HTTP {response.status_code}", gone=True)
                    if not response.is_success:
                        raise FetchFailed(f"HTTP {response.status_code}")
                    return await _read_chunks(response)
            except httpx.HTTPError as error:
                raise FetchFailed(type(error).__name__) from None
        raise FetchFailed("HTTP 401")

    async def _store(self, item: _Claimed, chunks: list[bytes], digest: str) -> None:
        # The fetch follows the reporter's submission within seconds: for an anonymous or
        # confidential report only the hour is kept, and the retry schedule is overwritten.
        now = for_reporter(self.clock.now(), item.reporter_mode)
        async with self.sessionmaker() as session, session.begin():
            file = await session.scalar(
                select(CaseAttachmentFile)
                .where(
                    CaseAttachmentFile.id == item.file_id,
                    CaseAttachmentFile.status == AttachmentFileStatus.PENDING,
                )
                .with_for_update()
            )
            if file is None:
                return  # stored by another replica meanwhile, or deleted with its case
            for seq, data in enumerate(chunks):
                session.add(
                    CaseAttachmentChunk(
                        org_id=item.org_id,
                        case_attachment_id=item.case_attachment_id,
                        case_id=item.case_id,
                        seq=seq,
                        data=data,
                        created_at=now,
                    )
                )
            file.status = AttachmentFileStatus.STORED
            file.size = sum(len(c) for c in chunks)
            file.chunk_count = len(chunks)
            file.sha256 = digest
            file.attempts += 1
            file.stored_at = file.updated_at = file.next_attempt_at = now
            file.locked_until = None
            file.last_error = None
        log.info(
            "attachment stored",
            extra={
                "case_id": str(item.case_id),
                "chunks": len(chunks),
                # Stored seconds after an anonymous submission: the line keeps the hour only.
                COARSE_TIME: item.reporter_mode != ReporterMode.IDENTIFIED,
            },
        )

    async def _record_failure(self, item: _Claimed, failure: FetchFailed) -> None:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            file = await session.get(CaseAttachmentFile, item.file_id, with_for_update=True)
            if file is None or file.status != AttachmentFileStatus.PENDING:
                return
            file.attempts += 1
            file.gone_answers = file.gone_answers + 1 if failure.gone else 0
            file.last_error = failure.code
            file.locked_until = None
            file.next_attempt_at = now + backoff(file.attempts)
            file.updated_at = for_reporter(now, item.reporter_mode)
            if file.gone_answers >= GIVE_UP_AFTER_GONE:
                file.status = AttachmentFileStatus.UNAVAILABLE
        log.warning(
            "attachment fetch failed",
            extra={
                "case_id": str(item.case_id),
                "error": failure.code,
                "gone": failure.gone,
                COARSE_TIME: item.reporter_mode != ReporterMode.IDENTIFIED,
            },
        )


async def _read_chunks(response: httpx.Response) -> tuple[list[bytes], str]:
    """The body in pieces of `CHUNK_BYTES`, checked against intake's SHA-256 header."""
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    total = 0
    async for piece in response.aiter_bytes(CHUNK_BYTES):
        total += len(piece)
        if total > MAX_FILE_BYTES:
            raise FetchFailed("too_large")
        digest.update(piece)
        chunks.append(piece)
    if not chunks:
        raise FetchFailed("empty")
    expected = response.headers.get("x-content-sha256")
    if expected is not None and expected.lower() != digest.hexdigest():
        raise FetchFailed("sha256_mismatch")
    return chunks, digest.hexdigest()


# ----------------------------------------------------------------------------- app wiring


async def start_attachment_fetcher(app: FastAPI) -> None:
    """`app.state.attachment_fetcher`, with the relay's service tokens (`svc-cases`); looping
    in the background whenever the relay does."""
    settings = app.state.settings
    fetcher = AttachmentFetcher(
        app.state.sessionmaker,
        app.state.clock,
        http=app.state.http,
        tokens=app.state.relay.tokens,
        intake_url=settings.intake_url,
    )
    app.state.attachment_fetcher = fetcher
    if settings.relay_background:
        fetcher.start()


async def stop_attachment_fetcher(app: FastAPI) -> None:
    fetcher: AttachmentFetcher | None = getattr(app.state, "attachment_fetcher", None)
    if fetcher is not None:
        await fetcher.stop()
