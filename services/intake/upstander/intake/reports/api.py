"""Routes of reports: the public submission, the reporter's later attachments, and the
gateway's receipt check."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.forms import service as forms
from upstander.intake.forms.schemas import Language
from upstander.intake.models import Attachment, ReportMode
from upstander.intake.reports import service
from upstander.intake.reports.requests import read_submission, read_upload
from upstander.intake.reports.schemas import (
    AttachmentOut,
    ReceiptVerified,
    ReceiptVerifyIn,
    ReportIn,
    ReportSubmitted,
)
from upstander.intake.settings import Settings
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, optional_principal, reporter, service_caller
from upstander.kit.db import CommittingRoute, get_session
from upstander.kit.errors import Forbidden, problem_responses
from upstander.kit.scopes import Scope, allows, reporter_token

router = make_router(prefix="/intake/v1", tags=["reports"])
internal_router = APIRouter(
    prefix="/intake/internal", tags=["internal"], route_class=CommittingRoute
)

# Request bodies documented by hand: the submission route reads JSON or multipart itself.
# `openapi_components()` adds the schemas these refer to.
OPENAPI_MODELS = (ReportIn,)
_REPORT_REF = {"$ref": "#/components/schemas/ReportIn"}
_SUBMISSION_BODY: dict[str, Any] = {
    # No token (`{}`), or for an identified report a person's token (narrowed or not, it must
    # allow `intake:write`).
    "security": [{}, {"OAuth2": ["intake:write"]}, {"BearerJWT": ["intake:write"]}],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _REPORT_REF},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["report"],
                    "properties": {
                        "report": _REPORT_REF,
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Attachments (types and sizes as configured).",
                        },
                    },
                },
                "encoding": {"report": {"contentType": "application/json"}},
            },
        },
    },
}

_THANKS = {
    Language.EN: "Thank you. Your report has been received.",
    Language.ES: "Gracias. Hemos recibido su denuncia.",
}
_KEEP_CODE = {
    Language.EN: (
        " Keep your receipt code somewhere safe: it is shown only this once, and it is how you "
        "follow your report and read replies."
    ),
    Language.ES: (
        " Guarde su código de recibo en un lugar seguro: solo se muestra esta vez, y es la forma "
        "de seguir su denuncia y leer las respuestas."
    ),
}


def get_settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def _attachment_out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(
        attachment_id=attachment.id,
        report_id=attachment.report_id,
        filename=str(attachment.filename),
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        created_at=attachment.created_at,
    )


@router.post(
    "/reports",
    operation_id="create_report",
    summary="Submit a report",
    description=(
        "Public. Send the report as JSON, or as `multipart/form-data` with a `report` part "
        "(the same JSON) and one `files` part per attachment.\n\n"
        "- `anonymous`: no token needed (one sent is ignored); no `reporter`.\n"
        "- `confidential`: no token needed; `reporter` (name and contact) is required and is "
        "seen only by the people handling the case.\n"
        "- `identified`: a staff bearer token of the organisation; the token says who reports.\n\n"
        "Anonymous and confidential reports get a `receipt_code`, shown this once: exchange it "
        "at `POST /auth/receipt` to follow the report. Nothing about the connection (address, "
        "user agent) is kept."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=ReportSubmitted,
    responses={
        201: {"headers": {"Cache-Control": {"schema": {"type": "string"}}}},
        **problem_responses(400, 401, 403, 404, 413, 415, 422),
    },
    openapi_extra=_SUBMISSION_BODY,
)
async def create_report(
    request: Request,
    response: Response,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> ReportSubmitted:
    body, files = await read_submission(request, settings)
    principal = None
    if body.mode == ReportMode.IDENTIFIED:
        # Only here is a token read at all: anonymous and confidential reports ignore one.
        # Before the session is used (kit.auth.optional_principal says why).
        principal = await optional_principal(request)
    form = await forms.get_by_slug(session, body.org)
    reporter_person_id = None
    if body.mode == ReportMode.IDENTIFIED:
        reporter_person_id = service.identified_reporter(principal, form.org_id)
        if principal is not None and not allows(principal, Scope.INTAKE_WRITE):
            raise Forbidden("This token was narrowed to scopes that do not include intake:write.")
    submitted = await service.submit_report(
        session,
        vault=request.app.state.vault,
        events=request.app.state.events,
        form=form,
        body=body,
        reporter_person_id=reporter_person_id,
        files=files,
        receipt_key=settings.receipt_key,
        now=request.app.state.clock.now(),
    )
    response.headers["Cache-Control"] = "no-store"  # the receipt code is shown once
    message = _THANKS[body.language]
    if submitted.receipt_code is not None:
        message += _KEEP_CODE[body.language]
    return ReportSubmitted(
        report_id=submitted.report.id,
        receipt_code=submitted.receipt_code,
        submitted_at=submitted.report.submitted_at,
        message=message,
    )


@router.post(
    "/reporter/attachments",
    operation_id="create_reporter_attachment",
    dependencies=[reporter_token()],
    summary="Attach a file to your report",
    description=(
        "For the reporter, with the token `POST /auth/receipt` gave them: add a file "
        "(multipart/form-data, part `file`) to their report. Types and size are limited."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=AttachmentOut,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)
async def create_reporter_attachment(
    request: Request,
    file: UploadFile = File(description="The file to attach."),
    principal: Principal = Depends(reporter),
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> AttachmentOut:
    assert principal.report_id is not None  # the `reporter` dependency guarantees it
    checked = await read_upload(file, settings)
    attachment = await service.add_attachment(
        session,
        vault=request.app.state.vault,
        events=request.app.state.events,
        report_id=principal.report_id,
        org_id=principal.org_id,
        file=checked,
        max_per_report=settings.max_attachments_per_report,
        now=request.app.state.clock.now(),
    )
    return _attachment_out(attachment)


# Only the cases service fetches attachment bytes (to seal them under the case's key).
CASES_SERVICE = "svc-cases"


@internal_router.get(
    "/reports/{report_id}/attachments/{attachment_id}/content",
    operation_id="get_attachment_content_for_cases",
    include_in_schema=False,
    response_class=Response,
)
async def get_attachment_content_for_cases(
    report_id: uuid.UUID,
    attachment_id: uuid.UUID,
    org_id: uuid.UUID,
    caller: Principal = Depends(service_caller),
    session: AsyncSession = Depends(get_session),
) -> Response:
    """For the cases service: the bytes of a reporter's attachment (`X-Content-SHA256` to check
    them). The gateway never routes `/intake/internal/*`; a service token is required, and
    it must be the cases service's."""
    if caller.subject != CASES_SERVICE:
        raise Forbidden("Only the cases service reads attachment content.")
    attachment, data = await service.attachment_for_cases(
        session, org_id=org_id, report_id=report_id, attachment_id=attachment_id
    )
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "X-Content-SHA256": attachment.sha256,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@internal_router.post(
    "/receipts/verify",
    operation_id="verify_receipt",
    response_model=ReceiptVerified,
    include_in_schema=False,
)
async def verify_receipt(
    body: ReceiptVerifyIn,
    _caller: Principal = Depends(service_caller),
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> ReceiptVerified:
    """For the gateway's `POST /auth/receipt`: which report a receipt code opens. A wrong
    organisation and a wrong code are the same 404."""
    report_id, org_id = await service.verify_receipt(
        session,
        org_slug=body.org,
        receipt_code=body.receipt_code,
        receipt_key=settings.receipt_key,
    )
    return ReceiptVerified(report_id=report_id, org_id=org_id)
