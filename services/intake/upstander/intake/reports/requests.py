"""Reading a report submission from the HTTP request: a JSON body, or multipart/form-data
with a `report` part (the same JSON) and `files` parts. Validation errors come out as the
kit renders them (422, or 400 for malformed JSON); nothing from the body is ever logged."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from upstander.intake.reports.files import NewAttachment, check_file, media_type
from upstander.intake.reports.schemas import ReportIn
from upstander.intake.settings import MIB, Settings
from upstander.kit.errors import PayloadTooLarge, UnsupportedMediaType

REPORT_PART = "report"
FILES_PART = "files"


def _validation_error(
    loc: tuple[str | int, ...], kind: str, message: str
) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message}])


def parse_report(raw: str | bytes, loc: tuple[str, ...]) -> ReportIn:
    try:
        return ReportIn.model_validate_json(raw)
    except ValidationError as exc:
        # Without the inputs: error details must never carry what the reporter wrote.
        errors: list[Any] = [
            {**error, "loc": (*loc, *error["loc"])}
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise RequestValidationError(errors) from None


async def read_upload(upload: UploadFile, settings: Settings) -> NewAttachment:
    """Read one uploaded file (never more than the limit plus one byte) and check it."""
    limit = settings.max_attachment_bytes
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(f"An attachment may be at most {limit} bytes.")
    data = await upload.read(limit + 1)
    return check_file(
        upload.filename,
        upload.content_type,
        data,
        max_bytes=limit,
        allowed_types=settings.attachment_types,
    )


async def read_submission(
    request: Request, settings: Settings
) -> tuple[ReportIn, list[NewAttachment]]:
    content_type = request.headers.get("content-type")
    kind = media_type(content_type) if content_type else "application/json"
    if kind == "multipart/form-data":
        return await _read_multipart(request, settings)
    if kind == "application/json" or kind.endswith("+json"):
        return parse_report(await request.body(), ("body",)), []
    raise UnsupportedMediaType(
        "Send a report as application/json, or as multipart/form-data with a `report` part "
        "and `files` parts."
    )


async def _read_multipart(
    request: Request, settings: Settings
) -> tuple[ReportIn, list[NewAttachment]]:
    limit = settings.max_attachments_per_report
    # +1: a `report` part sent as a file (curl -F report=@report.json) counts as one too.
    async with request.form(max_files=limit + 1, max_fields=10, max_part_size=MIB) as form:
        for name in form:
            if name not in (REPORT_PART, FILES_PART):
                raise _validation_error(("body", name), "extra_forbidden", "Unknown field.")
        reports = form.getlist(REPORT_PART)
        if not reports:
            raise _validation_error(("body", REPORT_PART), "missing", "Field required")
        if len(reports) > 1:
            raise _validation_error(("body", REPORT_PART), "value_error", "Send one report.")
        part = reports[0]
        if isinstance(part, str):
            raw: str | bytes = part
        else:
            raw = await part.read(MIB + 1)
            if len(raw) > MIB:
                raise PayloadTooLarge("The report part is too large.")
        report = parse_report(raw, ("body", REPORT_PART))
        uploads = form.getlist(FILES_PART)
        if len(uploads) > limit:
            raise _validation_error(
                ("body", FILES_PART), "too_long", f"At most {limit} files per report."
            )
        files: list[NewAttachment] = []
        for index, upload in enumerate(uploads):
            if isinstance(upload, str):
                raise _validation_error(("body", FILES_PART, index), "value_error", "Not a file.")
            files.append(await read_upload(upload, settings))
    return report, files
