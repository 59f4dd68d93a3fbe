"""The xAPI Document resources (State, Activity Profile, Agent Profile): store, merge (POST of
JSON objects), read, list ids, delete; ETags (SHA-1 of the content) for concurrency control.
Every document belongs to one org."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from upstander.training.xapi.models import XapiDocument

STATE = "state"
ACTIVITY_PROFILE = "activity_profile"
AGENT_PROFILE = "agent_profile"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Scope:
    """Which set of documents: the kind, and the activity / agent / registration it hangs on."""

    kind: str
    activity_id: str | None = None
    agent: str | None = None
    registration: str | None = None

    def hash(self, document_id: str | None = None) -> str:
        parts = [self.kind, self.activity_id or "", self.agent or "", self.registration or ""]
        if document_id is not None:
            parts.append(document_id)
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def where(self) -> list[Any]:
        """The documents of this scope; State without a registration: of every registration."""
        if self.kind == STATE and self.registration is None:
            return [
                XapiDocument.kind == self.kind,
                XapiDocument.activity_id == self.activity_id,
                XapiDocument.agent == self.agent,
            ]
        return [XapiDocument.scope_hash == self.hash()]


def etag_of(content: bytes) -> str:
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


def _is_json_type(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == JSON_TYPE


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in header.split(",") if t.strip()]


def check_preconditions(
    row: XapiDocument | None,
    if_match: str | None,
    if_none_match: str | None,
    *,
    required: bool,
) -> None:
    """If-Match / If-None-Match (412 when they fail); with `required` (a PUT of a profile), a
    write over an existing document without either header is a 409."""
    if if_match is not None:
        tags = _tags(if_match)
        if row is None or ("*" not in tags and row.etag not in tags):
            raise PreconditionFailed("The document's ETag does not match If-Match.")
    if if_none_match is not None:
        tags = _tags(if_none_match)
        if row is not None and ("*" in tags or row.etag in tags):
            raise PreconditionFailed("The document exists (If-None-Match).")
    if required and if_match is None and if_none_match is None:
        if row is not None:
            raise Conflict("The document exists: send If-Match with its ETag to replace it.")
        raise BadRequest(
            "Send If-None-Match: * to create this document (or If-Match to replace one)."
        )


async def find(
    session: AsyncSession, org_id: uuid.UUID, scope: Scope, document_id: str
) -> XapiDocument | None:
    return await session.scalar(
        select(XapiDocument).where(
            XapiDocument.org_id == org_id, XapiDocument.key_hash == scope.hash(document_id)
        )
    )


async def write(
    session: AsyncSession,
    org_id: uuid.UUID,
    scope: Scope,
    document_id: str,
    *,
    content: bytes,
    content_type: str,
    merge: bool,
    if_match: str | None,
    if_none_match: str | None,
    concurrency_required: bool,
    now: datetime,
) -> XapiDocument:
    """PUT (replace) or POST (`merge`: JSON objects merged at the top level)."""
    row = await find(session, org_id, scope, document_id)
    check_preconditions(row, if_match, if_none_match, required=concurrency_required and not merge)
    if merge:
        content, content_type = _merged(row, content, content_type)
    if row is None:
        row = XapiDocument(
            org_id=org_id,
            kind=scope.kind,
            key_hash=scope.hash(document_id),
            scope_hash=scope.hash(),
            activity_id=scope.activity_id,
            agent=scope.agent,
            registration=scope.registration,
            document_id=document_id,
            created_at=now,
        )
        session.add(row)
    row.content = content
    row.content_type = (content_type or "application/octet-stream")[:255]
    row.etag = etag_of(content)
    row.stored = now
    row.updated_at = now
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("The document was created meanwhile; read it and try again.") from exc
    return row


def _merged(row: XapiDocument | None, content: bytes, content_type: str) -> tuple[bytes, str]:
    if not _is_json_type(content_type):
        raise BadRequest("POST merges JSON documents: send application/json.")
    try:
        incoming = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The document is not valid JSON.") from exc
    if not isinstance(incoming, dict):
        raise BadRequest("POST merges JSON objects; the document is not one.")
    if row is None:
        return content, JSON_TYPE
    if not _is_json_type(row.content_type):
        raise BadRequest("The stored document is not JSON; it cannot be merged (use PUT).")
    try:
        stored = json.loads(row.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The stored document is not valid JSON; it cannot be merged.") from exc
    if not isinstance(stored, dict):
        raise BadRequest("The stored document is not a JSON object; it cannot be merged.")
    return json.dumps({**stored, **incoming}).encode(), JSON_TYPE


async def read(
    session: AsyncSession, org_id: uuid.UUID, scope: Scope, document_id: str
) -> XapiDocument:
    row = await find(session, org_id, scope, document_id)
    if row is None:
        raise NotFound("No such document.")
    return row


async def list_ids(
    session: AsyncSession, org_id: uuid.UUID, scope: Scope, since: datetime | None
) -> tuple[list[str], datetime | None]:
    query = select(XapiDocument.document_id, XapiDocument.stored).where(
        XapiDocument.org_id == org_id, *scope.where()
    )
    if since is not None:
        query = query.where(XapiDocument.stored > since)
    rows = (await session.execute(query.order_by(XapiDocument.stored))).all()
    ids = list(dict.fromkeys(row[0] for row in rows))
    return ids, max((row[1] for row in rows), default=None)


async def remove(
    session: AsyncSession,
    org_id: uuid.UUID,
    scope: Scope,
    document_id: str | None,
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
) -> None:
    """Delete one document (404-free: deleting nothing is fine), or every one of the scope."""
    if document_id is not None:
        row = await find(session, org_id, scope, document_id)
        check_preconditions(row, if_match, if_none_match, required=False)
        if row is not None:
            await session.delete(row)
        return
    await session.execute(delete(XapiDocument).where(XapiDocument.org_id == org_id, *scope.where()))


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()
