"""Routes of a case's evidence, for the people handling it: upload (multipart), list, read
with the chain of custody, download. Every route goes through the case's door (`VisibleCase`
/ `LockedCase`): whoever may not see the case gets 404 for its evidence too."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.cases.access import CaseCtx, LockedCase, VisibleCase, case_router
from upstander.cases.evidence import service
from upstander.cases.evidence.files import content_disposition, served_type
from upstander.cases.evidence.schemas import (
    Actor,
    CustodyOut,
    EvidenceDetail,
    EvidenceFieldsIn,
    EvidenceOut,
    EvidencePage,
)
from upstander.cases.evidence.upload import FILE_PART, read_evidence_form
from upstander.cases.models import CustodyAction, EvidenceCustody, EvidenceItem
from upstander.cases.settings import Settings
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["evidence"])


def get_settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def item_out(item: EvidenceItem) -> EvidenceOut:
    return EvidenceOut(**_item_fields(item))


def _item_fields(item: EvidenceItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "case_id": item.case_id,
        "filename": item.filename,
        "content_type": item.content_type,
        "size": item.size,
        "sha256": item.sha256,
        "description": item.description,
        "source": item.source,
        "collected_at": item.collected_at,
        "uploaded_by": Actor(kind=item.uploaded_by_kind, id=item.uploaded_by_id),
        "uploaded_at": item.created_at,
    }


def custody_out(entry: EvidenceCustody) -> CustodyOut:
    return CustodyOut(
        id=entry.id,
        action=entry.action,
        actor=Actor(kind=entry.actor_kind, id=entry.actor_id),
        at=entry.created_at,
        note=entry.note,
    )


# The upload's body, documented by hand: the route streams it itself (see upload.py).
_FIELDS_SCHEMA = EvidenceFieldsIn.model_json_schema()
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_PART, *_FIELDS_SCHEMA["required"]],
                    "additionalProperties": False,
                    "properties": {
                        FILE_PART: {
                            "type": "string",
                            "format": "binary",
                            "description": (
                                "The file. Its part's `Content-Type` must be one of the "
                                "service's evidence types (by default JPEG, PNG, PDF, plain "
                                "text, MP3, M4A, MP4) and match the content; at most "
                                "`max_evidence_bytes` (10 MiB by default)."
                            ),
                        },
                        **_FIELDS_SCHEMA["properties"],
                    },
                },
                "example": _FIELDS_SCHEMA["examples"][0],
            }
        },
    }
}

_DOWNLOAD_HEADERS = {
    "Content-Disposition": {
        "description": "Always `attachment`, with the sanitised file name in `filename*`.",
        "schema": {"type": "string"},
    },
    "X-Content-SHA256": {
        "description": "SHA-256 of the file as uploaded, lowercase hex.",
        "schema": {"type": "string"},
    },
    "Repr-Digest": {
        "description": "The same hash as RFC 9530 gives it: `sha-256=:<base64>:`.",
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {"description": "`nosniff`.", "schema": {"type": "string"}},
}


@router.post(
    "/cases/{case_id}/evidence",
    operation_id="create_evidence",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Add evidence to a case",
    description=(
        "Upload a file as evidence (`multipart/form-data`: a `file` part, and `description`, "
        "`source` and `collected_at` fields). The server computes the file's SHA-256 as it "
        "arrives and returns it; the file, its name, description and source are sealed under "
        "the case's data key, so destroying the case's data destroys them. The upload is the "
        "first entry of the item's chain of custody. Too large: 413; a type evidence may not "
        "have, or content that does not match its type: 415; a missing or invalid field: 422."
    ),
    status_code=201,
    response_model=EvidenceOut,
    responses={
        201: {
            "headers": {
                "Location": {
                    "description": "The new item's URL.",
                    "schema": {"type": "string"},
                }
            }
        },
        **problem_responses(400, 401, 403, 404, 413, 415, 422),
    },
    openapi_extra=_UPLOAD_BODY,
)
async def create_evidence(
    case: LockedCase,
    ctx: CaseCtx,
    response: Response,
    settings: Settings = Depends(get_settings),
) -> EvidenceOut:
    # The case row stays locked for the upload: the retention pass skips locked cases, so it
    # cannot shred the case (and a new key be made for it) while the chunks are written.
    writer = service.EvidenceWriter(
        ctx.session,
        case,
        ctx.principal,
        vault=ctx.vault,
        max_bytes=settings.max_evidence_bytes,
        allowed_types=settings.evidence_types,
        now=ctx.now,
    )
    form = await read_evidence_form(ctx.request, writer)
    item = await writer.finish(form)
    await ctx.audit("evidence.create", case, detail={"evidence_id": str(item.id)})
    response.headers["Location"] = f"/cases/v1/cases/{case.id}/evidence/{item.id}"
    return item_out(item)


@router.get(
    "/cases/{case_id}/evidence",
    operation_id="list_evidence",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="List a case's evidence",
    description=(
        "The case's evidence, oldest first. Page with `limit` and `cursor`. Reading the list "
        "reads each item's description and source, so each item listed gets a `viewed` entry "
        "in its chain of custody."
    ),
    response_model=EvidencePage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_evidence(
    case: VisibleCase, ctx: CaseCtx, page: PageParams = Depends(page_params)
) -> EvidencePage:
    items, next_cursor = await service.list_evidence(ctx.session, case, page)
    for item in items:
        await service.record_custody(
            ctx.session, item, ctx.principal, CustodyAction.VIEWED, ctx.now
        )
    await ctx.audit(
        "evidence.list", case, detail={"evidence_ids": [str(item.id) for item in items]}
    )
    return EvidencePage(items=[item_out(item) for item in items], next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}/evidence/{evidence_id}",
    operation_id="get_evidence",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Get a piece of evidence and its chain of custody",
    description=(
        "One item of the case's evidence with its whole chain of custody, oldest first: who "
        "uploaded, viewed, downloaded or exported it, and when. This read is itself recorded "
        "(the last `viewed` entry)."
    ),
    response_model=EvidenceDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_evidence(case: VisibleCase, evidence_id: uuid.UUID, ctx: CaseCtx) -> EvidenceDetail:
    item = await service.get_evidence(ctx.session, case, evidence_id)
    await service.record_custody(ctx.session, item, ctx.principal, CustodyAction.VIEWED, ctx.now)
    await ctx.audit("evidence.read", case, detail={"evidence_id": str(item.id)})
    custody = await service.custody_of(ctx.session, item)
    return EvidenceDetail(**_item_fields(item), custody=[custody_out(entry) for entry in custody])


class EvidenceFileResponse(StreamingResponse):
    """A streamed evidence file (documents the route's 200 as binary)."""

    media_type = "application/octet-stream"


async def _stream(
    sessionmaker: async_sessionmaker[AsyncSession], item: EvidenceItem
) -> AsyncIterator[bytes]:
    # A session of its own: the request's session is committed before the first byte goes
    # out, and it belongs to the route, not to a stream that may outlive it.
    async with sessionmaker() as session:
        async for piece in service.iter_evidence_bytes(session, item):
            yield piece


@router.get(
    "/cases/{case_id}/evidence/{evidence_id}/content",
    operation_id="download_evidence",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Download a piece of evidence",
    description=(
        "The file, decrypted and streamed chunk by chunk, always as an attachment. "
        "`Content-Type` is the stored type while it is an allowed evidence type, else "
        "`application/octet-stream`; `X-Content-SHA256` (and `Repr-Digest`) carry the hash "
        "taken on upload, so the receiver can check what it got. A stream that would not "
        "match that hash is cut short rather than completed. Recorded in the chain of "
        "custody (`downloaded`). 404 once the case's data was destroyed."
    ),
    response_class=EvidenceFileResponse,
    response_model=None,
    responses={
        200: {
            "description": "The file.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "headers": _DOWNLOAD_HEADERS,
        },
        **problem_responses(401, 403, 404, 422),
    },
)
async def download_evidence(
    case: VisibleCase,
    evidence_id: uuid.UUID,
    ctx: CaseCtx,
    settings: Settings = Depends(get_settings),
) -> StreamingResponse:
    item = await service.get_evidence(ctx.session, case, evidence_id)
    if service.is_shredded(item):
        raise service.EvidenceUnavailable("This evidence was destroyed with the case's data.")
    await service.record_custody(
        ctx.session, item, ctx.principal, CustodyAction.DOWNLOADED, ctx.now
    )
    await ctx.audit("evidence.download", case, detail={"evidence_id": str(item.id)})
    sha256 = str(item.sha256)
    headers = {
        "Content-Type": served_type(item.content_type, settings.evidence_types),
        "Content-Length": str(item.size),
        "Content-Disposition": content_disposition(item.filename, item.content_type),
        "X-Content-Type-Options": "nosniff",
        "X-Content-SHA256": sha256,
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
        "Cache-Control": "no-store",
        # Opened by mistake in a browser tab, the file runs nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    return EvidenceFileResponse(_stream(ctx.request.app.state.sessionmaker, item), headers=headers)
