"""Routes of case exports: download a case file as a signed ZIP, the public keys that check
it, and an online check of a bundle (the same check as `python -m upstander.cases.verify`)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import Depends, File, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from upstander.cases.access import CaseContext, case_context, case_dependency, case_router
from upstander.cases.export import service
from upstander.cases.export.bundle import CHUNK, keys_from_jwks, verify_bundle
from upstander.cases.export.schemas import ExportKeySet, VerificationOut, VerificationProblem
from upstander.cases.models import Case
from upstander.cases.problems import merge_responses, problem_example
from upstander.cases.roles import EXPORTERS
from upstander.kit.auth import Principal, staff_or_client
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["export"])

# The exporters' door: roles first (403), then the case's visibility rules (404).
_EXPORTER_CONTEXT = case_context(*EXPORTERS)
ExporterCtx = Annotated[CaseContext, _EXPORTER_CONTEXT]
ExportableCase = Annotated[Case, case_dependency(_EXPORTER_CONTEXT, for_update=False)]

# How much an uploaded bundle may decompress to before the online check gives up (the
# offline command has no such bound).
VERIFY_MAX_BYTES = 1024 * 1024 * 1024


def _settings_keys(request: Request) -> service.ExportKeys:
    return service.export_keys(request.app.state.settings)


ExportKeys = Annotated[service.ExportKeys, Depends(_settings_keys)]


def _send(file: IO[bytes]) -> Iterator[bytes]:
    """The finished bundle, chunk by chunk (run in a thread by Starlette); the temporary
    file is closed, and so deleted, when the download ends or is abandoned."""
    try:
        file.seek(0)
        while chunk := file.read(CHUNK):
            yield chunk
    finally:
        file.close()


@router.get(
    "/cases/{case_id}/export",
    operation_id="export_case",
    dependencies=[require_scope(Scope.CASES_EXPORT)],
    summary="Export a case file (signed ZIP)",
    description=(
        "The whole case file as one ZIP: `case.json`, `report.json` (and the reporter's "
        "stored files under `report/attachments/`), `messages.json`, `transitions.json`, "
        "`allegations.json` (with findings), `assignments.json`, `actions.json` (interim "
        "measures and corrective actions), `checkins.json`, `notes.json` and "
        "`interviews.json` (every version), `evidence.json` (with each item's chain of "
        "custody) and the files under `evidence/<id>/`, and `audit.json` (the case's audit "
        "entries with `seq`, `prev_hash` and `hash`). `manifest.json` lists every member "
        "with its SHA-256 and size, the case, the time and the exporter; `manifest.sig` is "
        "a detached Ed25519 signature over the manifest's exact bytes by the key published "
        "at `GET /cases/v1/export-keys`. Check a bundle with `POST /cases/v1/exports/verify` "
        "or offline with `python -m upstander.cases.verify`. Only reviewers and admins may "
        "export, and a case manager while assigned to the case (403 otherwise). The export "
        "is audited (`case.export`, with the `export_id` of the manifest) and each evidence "
        "item records an `exported` custody entry. A case whose data was destroyed "
        "(crypto-shredded) is 410; a case deleted past retention is 404, as everywhere. A "
        "confidential reporter's identity is not part of the export."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The bundle.",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "Content-Disposition": {
                    "description": 'e.g. `attachment; filename="DEMO-2026-0001-export.zip"`',
                    "schema": {"type": "string"},
                }
            },
        },
        **merge_responses(
            problem_responses(401, 403, 404, 410, 422),
            {410: problem_example(410, "shredded", "This case's content was destroyed.")},
            {410: {"description": "The case's data was destroyed (crypto-shredded)."}},
        ),
    },
)
async def export_case(case: ExportableCase, ctx: ExporterCtx, keys: ExportKeys) -> Response:
    await service.check_exportable(ctx.session, ctx.principal, case, ctx.vault)
    export_id = uuid.uuid4()
    # Before the bundle is written, so that its audit.json holds this export's own entry.
    await ctx.audit(
        "case.export", case, detail={"export_id": str(export_id), "key_id": keys.signing.kid}
    )
    target = tempfile.TemporaryFile()
    try:
        written = await service.write_bundle(
            ctx.session,
            case,
            ctx.principal,
            key=keys.signing,
            export_id=export_id,
            now=ctx.now,
            target=target,
        )
        size = target.seek(0, 2)
    except BaseException:
        target.close()
        raise
    return StreamingResponse(
        _send(target),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{written.filename}"',
            "Content-Length": str(size),
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/export-keys",
    operation_id="list_export_keys",
    summary="Public keys of case exports",
    description=(
        "The Ed25519 public keys (a JWK set) that this deployment's export bundles are signed "
        "with: the current key first, then retired ones whose bundles still verify. No token "
        "needed: whoever holds a bundle (a regulator, a court) checks it with these alone."
    ),
    response_model=ExportKeySet,
    responses=problem_responses(401, 403),
)
async def list_export_keys(keys: ExportKeys, response: Response) -> ExportKeySet:
    response.headers["Cache-Control"] = "public, max-age=300"
    return ExportKeySet.model_validate({"keys": list(keys.published)})


@router.post(
    "/exports/verify",
    operation_id="verify_export",
    dependencies=[require_scope(Scope.CASES_EXPORT)],
    summary="Verify an export bundle",
    description=(
        "Upload a bundle (multipart, field `bundle`) to check it against this deployment's "
        "export keys: `valid` is true only when the signature verifies and every member is "
        "listed in the manifest with its exact size and SHA-256, none missing and none added. "
        "Otherwise `problems` says what is wrong. Any person or API client of an organisation "
        "may check a bundle (it reads nothing of the cases); to check one without an account, "
        "use `python -m upstander.cases.verify BUNDLE.zip --key-url "
        "https://<host>/cases/v1/export-keys`. Bundles larger than the request limit, or "
        "decompressing to more than 1 GiB, are for the offline command."
    ),
    response_model=VerificationOut,
    responses=problem_responses(400, 401, 403, 413, 415, 422),
)
async def verify_export(
    keys: ExportKeys,
    bundle: UploadFile = File(description="The ZIP bundle as downloaded from `export_case`."),
    principal: Principal = Depends(staff_or_client),
) -> VerificationOut:
    public = keys_from_jwks({"keys": list(keys.published)})
    result = await run_in_threadpool(
        verify_bundle, bundle.file, public, max_total_bytes=VERIFY_MAX_BYTES
    )
    header = result.manifest or {}

    def text(name: str) -> str | None:
        value = header.get(name)
        return value[:200] if isinstance(value, str) else None

    return VerificationOut(
        valid=result.valid,
        problems=[
            VerificationProblem(code=p.code, path=p.path, detail=p.detail) for p in result.problems
        ],
        case_id=text("case_id"),
        case_number=text("case_number"),
        export_id=text("export_id"),
        exported_at=text("exported_at"),
        key_id=text("key_id"),
    )
