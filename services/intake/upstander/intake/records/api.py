"""Routes of private records. Public (no account): the record code, sent in the body and
never in a URL, is the only key. Nobody at the organisation has a route to any record."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from fastapi import Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.forms import service as forms
from upstander.intake.models import ReportMode
from upstander.intake.records import sealing, service
from upstander.intake.records.schemas import (
    EntryProof,
    RecordAddIn,
    RecordCodeIn,
    RecordCreated,
    RecordCreateIn,
    RecordEntryOut,
    RecordFileOut,
    RecordOut,
    RecordProofs,
    RecordReported,
    RecordToReportIn,
    SigningKeyOut,
    VerifyProofIn,
    VerifyProofOut,
)
from upstander.intake.reports import service as reports
from upstander.intake.reports.api import get_settings
from upstander.intake.settings import Settings
from upstander.kit.app import make_router
from upstander.kit.auth import optional_principal
from upstander.kit.db import get_session
from upstander.kit.errors import Forbidden, problem_responses
from upstander.kit.scopes import Scope, allows

router = make_router(prefix="/intake/v1/records", tags=["records"])

_PUBLIC: dict[str, Any] = {"security": [{}]}


def _signer(request: Request) -> sealing.Signer:
    signer = request.app.state.record_signer
    assert isinstance(signer, sealing.Signer)
    return signer


def _proof(entry: service.Entry) -> EntryProof:
    return EntryProof(
        entry_id=entry.entry_id,
        proof=entry.proof,
        document=base64.b64encode(entry.document_bytes).decode("ascii"),
    )


def _entry_out(entry: service.Entry) -> RecordEntryOut:
    doc = entry.document
    return RecordEntryOut(
        entry_id=entry.entry_id,
        written_at=datetime.fromisoformat(doc["written_at"]),
        text=doc["text"],
        occurred_at=doc["occurred_at"],
        location=doc["location"],
        attachments=[
            RecordFileOut(**meta, data_base64=data)
            for meta, data in zip(doc["attachments"], entry.files, strict=True)
        ],
        proof=_proof(entry),
    )


async def _open(
    body: RecordCodeIn, session: AsyncSession, settings: Settings
) -> service.OpenRecord:
    return await service.open_record(
        session, org_slug=body.org, typed_code=body.record_code, receipt_key=settings.receipt_key
    )


@router.post(
    "",
    operation_id="create_private_record",
    summary="Start a private record",
    description=(
        "Public, no account. Write down what happened, when and where, with files (base64). "
        "The answer's `record_code` is shown once and is the only way to open the record: "
        "it is never stored, and a key derived from it (scrypt) seals the record, so "
        "nobody at the organisation, and no operator with the database, can read it. The "
        "entry comes with a signed time proof (`entry.proof`, `entry.document`) you can "
        "keep and check later against the published key."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=RecordCreated,
    responses=problem_responses(400, 404, 413, 415, 422),
    openapi_extra=_PUBLIC,
)
async def create_private_record(
    body: RecordCreateIn,
    request: Request,
    response: Response,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> RecordCreated:
    form = await forms.get_by_slug(session, body.org)
    opened, code, entry = await service.create(
        session,
        vault=request.app.state.vault,
        signer=_signer(request),
        form=form,
        entry_in=body.entry,
        settings=settings,
        now=request.app.state.clock.now(),
    )
    response.headers["Cache-Control"] = "no-store"
    return RecordCreated(
        record_id=opened.record.id,
        record_code=code,
        entry=_proof(entry),
        message=(
            "Your record is saved and sealed. Keep your record code somewhere safe: it is "
            "shown only this once, and without it nobody (not even us) can open the record."
        ),
    )


@router.post(
    "/read",
    operation_id="read_private_record",
    summary="Read your private record",
    description="With the record code: every entry, its files and its proof. 404 for a "
    "wrong code or organisation (the same answer).",
    response_model=RecordOut,
    responses=problem_responses(404, 422),
    openapi_extra=_PUBLIC,
)
async def read_private_record(
    body: RecordCodeIn,
    response: Response,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> RecordOut:
    opened = await _open(body, session, settings)
    response.headers["Cache-Control"] = "no-store"
    written = await service.entries(session, opened)
    return RecordOut(record_id=opened.record.id, entries=[_entry_out(e) for e in written])


@router.post(
    "/entries",
    operation_id="add_private_record_entry",
    summary="Add to your private record",
    description="With the record code: a new entry, with its own signed time proof.",
    status_code=status.HTTP_201_CREATED,
    response_model=EntryProof,
    responses=problem_responses(404, 409, 413, 415, 422),
    openapi_extra=_PUBLIC,
)
async def add_private_record_entry(
    body: RecordAddIn,
    request: Request,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> EntryProof:
    opened = await _open(body, session, settings)
    entry = await service.add(
        session,
        opened=opened,
        signer=_signer(request),
        entry_in=body.entry,
        settings=settings,
        now=request.app.state.clock.now(),
    )
    return _proof(entry)


@router.post(
    "/proof",
    operation_id="get_private_record_proof",
    summary="Download your record's time proofs",
    description=(
        "With the record code: each entry's signed statement (record, entry, SHA-256 of the "
        "document, time; Ed25519) with the document it covers, and the public key. Anyone can "
        "check them offline: SHA-256 of `document` equals `proof.sha256`, and `signature` "
        "verifies over the canonical JSON of the proof without `signature`."
    ),
    response_model=RecordProofs,
    responses=problem_responses(404, 422),
    openapi_extra=_PUBLIC,
)
async def get_private_record_proof(
    body: RecordCodeIn,
    request: Request,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> RecordProofs:
    opened = await _open(body, session, settings)
    written = await service.entries(session, opened)
    return RecordProofs(
        record_id=opened.record.id,
        public_key=_signer(request).jwk(),
        proofs=[_proof(e) for e in written],
    )


@router.post(
    "/delete",
    operation_id="delete_private_record",
    summary="Delete your private record",
    description="With the record code: the record and its sealing key are destroyed.",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(404, 422),
    openapi_extra=_PUBLIC,
)
async def delete_private_record(
    body: RecordCodeIn,
    request: Request,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> Response:
    opened = await _open(body, session, settings)
    await service.delete_record(session, vault=request.app.state.vault, opened=opened)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/report",
    operation_id="report_private_record",
    summary="Turn your private record into a report",
    description=(
        "With the record code: submit a report (any `mode`, as `POST /intake/v1/reports`) made "
        "of the record's entries and files. The report carries the first entry's signed time "
        "(`recorded_at`), which the case handlers see. An `identified` report needs your staff "
        "token. Anonymous and confidential reports get a `receipt_code`."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=RecordReported,
    responses=problem_responses(401, 403, 404, 409, 422),
    openapi_extra={"security": [{}, {"OAuth2": ["intake:write"]}, {"BearerJWT": ["intake:write"]}]},
)
async def report_private_record(
    body: RecordToReportIn,
    request: Request,
    response: Response,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> RecordReported:
    # The token first, before the session is used (kit.auth.optional_principal says why).
    principal = await optional_principal(request) if body.mode == ReportMode.IDENTIFIED else None
    form = await forms.get_by_slug(session, body.org)
    reporter_person_id: uuid.UUID | None = None
    if body.mode == ReportMode.IDENTIFIED:
        reporter_person_id = reports.identified_reporter(principal, form.org_id)
        if principal is not None and not allows(principal, Scope.INTAKE_WRITE):
            raise Forbidden("This token was narrowed to scopes that do not include intake:write.")
    opened = await _open(body, session, settings)
    submitted, recorded_at = await service.to_report(
        session,
        vault=request.app.state.vault,
        events=request.app.state.events,
        opened=opened,
        form=form,
        body=body,
        reporter_person_id=reporter_person_id,
        settings=settings,
        now=request.app.state.clock.now(),
    )
    response.headers["Cache-Control"] = "no-store"
    return RecordReported(
        report_id=submitted.report.id,
        receipt_code=submitted.receipt_code,
        submitted_at=submitted.report.submitted_at,
        recorded_at=recorded_at,
        message="Thank you. Your report has been received, with your record's proven time.",
    )


@router.get(
    "/signing-key",
    operation_id="get_record_signing_key",
    summary="The key that signs record time proofs",
    description="Public: the Ed25519 public key (JWK and PEM) that checks every proof.",
    response_model=SigningKeyOut,
    openapi_extra=_PUBLIC,
)
async def get_record_signing_key(request: Request) -> SigningKeyOut:
    signer = _signer(request)
    return SigningKeyOut(jwk=signer.jwk(), pem=signer.public_pem())


@router.post(
    "/proofs/verify",
    operation_id="verify_record_proof",
    summary="Check a record time proof",
    description=(
        "Public: whether `proof` is this deployment's signature over `document` (base64). "
        "A changed byte in either answers `valid: false`."
    ),
    response_model=VerifyProofOut,
    responses=problem_responses(422),
    openapi_extra=_PUBLIC,
)
async def verify_record_proof(body: VerifyProofIn, request: Request) -> VerifyProofOut:
    try:
        document = base64.b64decode(body.document, validate=True)
    except (binascii.Error, ValueError):
        return VerifyProofOut(valid=False)
    signer = _signer(request)
    if body.proof.get("kid") != signer.kid:
        return VerifyProofOut(valid=False)
    return VerifyProofOut(valid=sealing.verify_proof(body.proof, document, signer.public_raw))
