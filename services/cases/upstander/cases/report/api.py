"""Routes of what the reporter gave, for the people who handle the case: the report, its
attachments (listed and downloaded), and a confidential reporter's identity, read apart and
only with a reason. Every read is audited; a case hidden from the caller is 404."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Query, Response
from fastapi.responses import StreamingResponse

from upstander.cases.access import CaseCtx, VisibleCase, case_router
from upstander.cases.problems import InvalidRequest, merge_responses, problem_example
from upstander.cases.report import service
from upstander.cases.report.schemas import (
    REASON_MAX,
    REASON_MIN,
    AttachmentList,
    ReporterIdentityIn,
    ReporterIdentityOut,
    ReportOut,
)
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["report"])

# Nothing the reporter gave is kept by a browser or a proxy.
NO_STORE = "no-store"

SHREDDED: dict[int | str, dict[str, Any]] = {
    410: {
        "description": "The case's content was destroyed (crypto-shredded).",
        **problem_example(410, "shredded", "This case's content was destroyed (crypto-shredded)."),
    }
}
NOT_AVAILABLE: dict[int | str, dict[str, Any]] = {
    409: problem_example(
        409,
        "attachment-not-available",
        "The file has not arrived from intake yet; try again later.",
        attachment_status="pending",
    )
}
NO_IDENTITY: dict[int | str, dict[str, Any]] = {
    409: problem_example(
        409,
        "no-reporter-identity",
        "The report is anonymous: there is no identity to read.",
    )
}
_HIDDEN = (
    "A case hidden from you (you are involved in it, were excluded by the reporter, are above "
    "an involved person in the reporting chain, or recused yourself) is 404, as if it did not "
    "exist."
)
_IDENTITY_DESCRIPTION = (
    "Who made a confidential report (name and contact), or the directory id of an identified "
    "reporter. Only a person assigned to the case as `case_manager` or `reviewer` may read it "
    "(403 for anyone else, whatever their role); the reason is required (10 to 500 "
    "characters) and is recorded, sealed under the case's key, and the read is audited "
    "(`reporter_identity.read`, with the id of the recorded read only). An anonymous report "
    "is 409 `no-reporter-identity`. " + _HIDDEN
)


@router.get(
    "/cases/{case_id}/report",
    operation_id="get_case_report",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Read what the reporter gave",
    description=(
        "Everything the reporter gave: description, when and where, people involved, "
        "witnesses, desired outcome, categories, language, and the list of attachments. A "
        "confidential reporter's name and contact are not part of it (see "
        "`get_reporter_identity`). Every read is audited (`report.read`). "
        + _HIDDEN
        + " A case whose data key was destroyed is 410 `shredded`."
    ),
    response_model=ReportOut,
    responses=merge_responses(problem_responses(401, 403, 404, 410, 422), SHREDDED),
)
async def get_case_report(case: VisibleCase, ctx: CaseCtx, response: Response) -> ReportOut:
    await service.ensure_not_shredded(ctx.vault, case)
    report = await service.read_report(ctx.session, case)
    await ctx.audit("report.read", case)
    response.headers["Cache-Control"] = NO_STORE
    return report


@router.get(
    "/cases/{case_id}/attachments",
    operation_id="list_case_attachments",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="List the reporter's attachments",
    description=(
        "The files the reporter attached, oldest first, with `status`: a file is downloadable "
        "once `stored` (it is copied from intake into the case file, under the case's key, "
        "shortly after it arrives). Audited (`attachment.list`). "
        + _HIDDEN
        + " A case whose data key was destroyed is 410 `shredded`."
    ),
    response_model=AttachmentList,
    responses=merge_responses(problem_responses(401, 403, 404, 410, 422), SHREDDED),
)
async def list_case_attachments(
    case: VisibleCase, ctx: CaseCtx, response: Response
) -> AttachmentList:
    await service.ensure_not_shredded(ctx.vault, case)
    items = await service.list_attachments(ctx.session, case)
    await ctx.audit("attachment.list", case)
    response.headers["Cache-Control"] = NO_STORE
    return AttachmentList(items=items)


_DOWNLOAD_HEADERS: dict[str, Any] = {
    "Content-Disposition": {
        "description": "Always `attachment`, with `filename` and RFC 6266 `filename*`.",
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {"description": "`nosniff`.", "schema": {"type": "string"}},
    "Content-Length": {"schema": {"type": "integer"}},
}


@router.get(
    "/cases/{case_id}/attachments/{attachment_id}/content",
    operation_id="get_case_attachment_content",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Download a reporter's attachment",
    description=(
        "The file's bytes, streamed, always as a download (`Content-Disposition: attachment`). "
        "`Content-Type` is the stored type when it is one of JPEG, PNG, PDF, plain text, MP3, "
        "M4A or MP4, otherwise `application/octet-stream`. Audited (`attachment.download`). "
        "409 `attachment-not-available` while the file is still on its way from intake. " + _HIDDEN
    ),
    response_class=StreamingResponse,
    response_model=None,
    responses=merge_responses(
        {
            200: {
                "description": "The file.",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
                "headers": _DOWNLOAD_HEADERS,
            }
        },
        problem_responses(401, 403, 404, 409, 410, 422),
        NOT_AVAILABLE,
        SHREDDED,
    ),
)
async def get_case_attachment_content(
    case: VisibleCase, attachment_id: uuid.UUID, ctx: CaseCtx
) -> StreamingResponse:
    await service.ensure_not_shredded(ctx.vault, case)
    download = await service.open_download(ctx.session, case, attachment_id)
    await ctx.audit("attachment.download", case, detail={"attachment_id": str(attachment_id)})
    return StreamingResponse(
        service.stream_chunks(ctx.request.app.state.sessionmaker, download),
        media_type=download.media_type,
        headers={
            "Content-Disposition": service.content_disposition(download.filename),
            "Content-Length": str(download.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": NO_STORE,
            # Opened in a browser tab anyway, nothing in it may run or load.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


async def _identity(case: VisibleCase, ctx: CaseCtx, reason: str) -> ReporterIdentityOut:
    identity = await service.read_identity(
        ctx.session, ctx.principal, case, reason=reason, now=ctx.now
    )
    # Ids only: the reason itself is sealed with the recorded read, never in the audit trail.
    await ctx.audit("reporter_identity.read", case, detail={"read_id": str(identity.read_id)})
    return identity


_IDENTITY_RESPONSES = merge_responses(
    problem_responses(401, 403, 404, 409, 410, 422), NO_IDENTITY, SHREDDED
)


@router.get(
    "/cases/{case_id}/reporter-identity",
    operation_id="get_reporter_identity",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Read who the reporter is (with a reason)",
    description=_IDENTITY_DESCRIPTION
    + " Prefer `POST` (`read_reporter_identity`): a reason in a query string can end up in "
    "logs outside the platform.",
    response_model=ReporterIdentityOut,
    responses=_IDENTITY_RESPONSES,
)
async def get_reporter_identity(
    case: VisibleCase,
    ctx: CaseCtx,
    response: Response,
    reason: str = Query(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        description="Why you need the reporter's identity, 10 to 500 characters.",
        examples=["To arrange the interview the reporter asked for."],
    ),
) -> ReporterIdentityOut:
    reason = reason.strip()
    if len(reason) < REASON_MIN:
        raise InvalidRequest("query.reason", f"At least {REASON_MIN} characters, not blank.")
    await service.ensure_not_shredded(ctx.vault, case)
    response.headers["Cache-Control"] = NO_STORE
    return await _identity(case, ctx, reason)


@router.post(
    "/cases/{case_id}/reporter-identity",
    operation_id="read_reporter_identity",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Read who the reporter is (reason in the body)",
    description=_IDENTITY_DESCRIPTION,
    response_model=ReporterIdentityOut,
    responses=_IDENTITY_RESPONSES,
)
async def read_reporter_identity(
    case: VisibleCase, body: ReporterIdentityIn, ctx: CaseCtx, response: Response
) -> ReporterIdentityOut:
    await service.ensure_not_shredded(ctx.vault, case)
    response.headers["Cache-Control"] = NO_STORE
    return await _identity(case, ctx, body.reason)
