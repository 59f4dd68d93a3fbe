"""`Idempotency-Key` on writes (Stripe's model): the first response to a key is stored and
replayed to retries; the same key with different parameters is refused.

- Only callers with a valid token get it: a key is scoped to its caller (kind and subject),
  so nobody can replay someone else's response. Anonymous writes (intake's public report
  form) are never replayed: a stored answer there would hand a receipt code to whoever
  guessed the key.
- Stored responses can hold case content, so they are sealed with the deployment's key.
- A key being processed is reserved first (409 while it is in flight); a 5xx answer frees it
  so the retry runs for real. Keys expire after `idempotency_ttl_hours` (default 24).
- A reporter's key (a token from a receipt code) is stored with its time floored to the hour
  (`upstander.kit.clock.coarse`): the row must not tell when an anonymous reporter wrote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, Uuid, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope

from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.clock import coarse
from upstander.kit.crypto import Keyring
from upstander.kit.db import IdMixin, UTCDateTime
from upstander.kit.edge import Answer, EdgeMiddleware, Exchange
from upstander.kit.errors import PROBLEM_BASE, ProblemError

log = logging.getLogger("upstander.idempotency")

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED_HEADERS = {b"content-type", b"location", b"etag"}


class IdempotencyMixin(IdMixin):
    caller: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sealed_with: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def idempotency_table(base: type) -> type[IdempotencyMixin]:
    """The `idempotency_keys` table on a service's own declarative base."""
    return type(
        "IdempotencyKey",
        (IdempotencyMixin, base),
        {
            "__module__": base.__module__,
            "__tablename__": "idempotency_keys",
            "__table_args__": (UniqueConstraint("caller", "key"),),
        },
    )


def _problem(status: int, slug: str, title: str, detail: str) -> tuple[int, bytes]:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    return status, json.dumps(body).encode()


class Idempotency:
    """Edge step (kit/edge.py), inside the body guard, so bodies are already bounded. It costs
    a method check on a read, and a header look-up on a write without a key."""

    name = "idempotency"

    def __init__(self, table: type[Any], ttl_hours: int = 24) -> None:
        self.table = table
        self.ttl = timedelta(hours=ttl_hours)

    def enter(self, exchange: Exchange) -> Any:
        if exchange.scope["method"] not in WRITE_METHODS:
            return None
        raw_key = exchange.headers().get(HEADER)
        if raw_key is None:
            return None
        return self._enter(exchange, raw_key)

    async def _enter(self, exchange: Exchange, raw_key: bytes) -> Answer | None:
        scope = exchange.scope
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            return _answer(
                *_problem(
                    400,
                    "bad-request",
                    "Bad request",
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                )
            )
        principal = await self._principal(scope, exchange.headers())
        if principal is None:  # anonymous or invalid token: no replay (see module docstring)
            return None

        receive = exchange.receive
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()
        caller = f"{principal.kind}:{principal.subject}"
        state = scope["app"].state
        outcome = await self._reserve(state, caller, key, principal, fingerprint)
        if outcome is not None:
            return _answer(*outcome[:2], replay_headers=outcome[2])

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        replayed = False

        async def replay_receive() -> Message:
            # The buffered body once; after that the real channel, so a response that waits
            # for the client to disconnect (streaming) blocks instead of spinning.
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        def capture(_exchange: Exchange, message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        async def finish(_exchange: Exchange) -> None:
            await self._finish(state, caller, key, captured)

        exchange.receive = replay_receive
        exchange.watch(capture)
        exchange.on_exit(finish)
        return None

    async def _principal(self, scope: Scope, headers: dict[bytes, bytes]) -> Principal | None:
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            verified: Principal = await scope["app"].state.token_verifier.verify(token.strip())
        except ProblemError:
            return None
        return verified

    async def _reserve(
        self, state: Any, caller: str, key: str, principal: Principal, fingerprint: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """Reserve the key, or answer from what is stored: the replay, or a refusal."""
        now = state.clock.now()
        stamp = coarse(now) if principal.kind == PrincipalKind.REPORTER else now
        async with state.sessionmaker() as session:
            await session.execute(delete(self.table).where(self.table.expires_at < now))
            row = await session.scalar(
                select(self.table).where(self.table.caller == caller, self.table.key == key)
            )
            if row is None:
                session.add(
                    self.table(
                        caller=caller,
                        key=key,
                        org_id=principal.org_id,
                        fingerprint=fingerprint,
                        created_at=stamp,
                        expires_at=stamp + self.ttl,
                    )
                )
                try:
                    await session.commit()
                    return None
                except IntegrityError:  # a concurrent twin reserved it first
                    await session.rollback()
                    row = await session.scalar(
                        select(self.table).where(self.table.caller == caller, self.table.key == key)
                    )
            else:
                await session.commit()
        if row is None or row.fingerprint != fingerprint:
            return (
                *_problem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "This Idempotency-Key was used with a different request.",
                ),
                [],
            )
        if row.status_code is None:
            return (
                *_problem(
                    409,
                    "idempotency-key-in-use",
                    "Request in progress",
                    "A request with this Idempotency-Key is still being processed; retry later.",
                ),
                [],
            )
        stored = json.loads(self._unseal(state, row))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored["headers"]]
        headers.append((b"idempotent-replayed", b"true"))
        return row.status_code, stored["body"].encode("latin-1"), headers

    async def _finish(self, state: Any, caller: str, key: str, captured: dict[str, Any]) -> None:
        async with state.sessionmaker() as session:
            row = await session.scalar(
                select(self.table).where(self.table.caller == caller, self.table.key == key)
            )
            if row is None:
                return
            if captured["status"] >= 500:
                await session.delete(row)  # let the retry run for real
            else:
                kept = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in captured["headers"]
                    if k.lower() in REPLAYED_HEADERS
                ]
                raw = json.dumps(
                    {"headers": kept, "body": captured["body"].decode("latin-1")}
                ).encode()
                keyring: Keyring = state.idempotency_keyring
                row.sealed_with, row.response = keyring.wrap(raw, row.id.bytes)
                row.status_code = captured["status"]
            await session.commit()

    def _unseal(self, state: Any, row: Any) -> bytes:
        keyring: Keyring = state.idempotency_keyring
        return keyring.unwrap(row.sealed_with, row.response, row.id.bytes)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


def _answer(
    status: int,
    body: bytes,
    replay_headers: list[tuple[bytes, bytes]] | None = None,
) -> Answer:
    headers = replay_headers or [(b"content-type", b"application/problem+json")]
    headers = [h for h in headers if h[0] != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return Answer(status, headers, body)


class IdempotencyMiddleware(EdgeMiddleware):
    """`Idempotency` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp, table: type[Any], ttl_hours: int = 24) -> None:
        super().__init__(app, steps=[Idempotency(table, ttl_hours)])
