"""Routes of completions: record one, import a CSV file, list and read."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles, staff_or_client
from upstander.kit.db import get_session
from upstander.kit.errors import UnsupportedMediaType, problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_scope
from upstander.training.access import MANAGERS, clock_of
from upstander.training.completions import service
from upstander.training.completions.schemas import CompletionCreate, CompletionOut, ImportResult
from upstander.training.models import CompletionSource

router = make_router(prefix="/training/v1/completions", tags=["completions"])
editors = require_roles(*MANAGERS)

CSV_EXAMPLE = (
    "email,course,completed_at,score,duration_minutes,certificate_id\n"
    "dana@demo.example,Bystander intervention: the five Ds,2026-03-14,92.5,60,CERT-42\n"
)


@router.post(
    "",
    operation_id="create_completion",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Record a completion (trainer, admin); upsert by external reference",
    description=(
        "201 with the new completion. With `external_refs`, a completion one of them "
        "already names (or the same person, course and time already recorded) is updated "
        "instead (score, duration, certificate; 200): a sync can be re-run without "
        "duplicates. Without references, the same person, course and time again is 409."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=CompletionOut,
    responses={
        200: {"description": "The completion with this external reference, updated."},
        **problem_responses(400, 409, 413, 415),
    },
)
async def create_completion(
    body: CompletionCreate,
    response: Response,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> CompletionOut:
    completion, created = await service.upsert_completion(session, principal, body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/training/v1/completions/{completion.id}"
    return CompletionOut.model_validate(completion)


@router.post(
    "/imports",
    operation_id="import_completions",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Import completions from a CSV file (trainer, admin); re-importing is harmless",
    description=(
        "Columns: `email`, `course` (id, title or xAPI activity id), `completed_at` "
        "(ISO 8601 date or date-time), and optionally `score` (0-100), `duration_minutes`, "
        "`certificate_id`. Each row is checked on its own: good rows are recorded, the others "
        "listed with their line number and reason."
    ),
    response_model=ImportResult,
    responses=problem_responses(400, 409, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
        }
    },
)
async def import_completions(
    request: Request,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> ImportResult:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise UnsupportedMediaType("Send the file as `text/csv`.")
    outcome = await service.import_completions(
        session, principal, await request.body(), now=clock_of(request).now()
    )
    return ImportResult(accepted=outcome.accepted, rejected=outcome.rejected)


@router.get(
    "",
    operation_id="list_completions",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="List completions, newest first (a person sees their own; trainers everyone's)",
    response_model=Page[CompletionOut],
    responses=problem_responses(400),
)
async def list_completions(
    person_id: uuid.UUID | None = Query(None),
    course_id: uuid.UUID | None = Query(None),
    source: CompletionSource | None = Query(None),
    completed_after: datetime | None = Query(None, description="Inclusive."),
    completed_before: datetime | None = Query(None, description="Exclusive."),
    external_ref: str | None = Query(
        None,
        max_length=265,
        description="Only the completion another system calls this: `<system>:<id>`.",
        examples=["workday:TR-88"],
    ),
    params: PageParams = Depends(page_params),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Page[CompletionOut]:
    rows, next_cursor = await service.list_completions(
        session,
        principal,
        params,
        person_id=person_id,
        course_id=course_id,
        source=source,
        completed_after=completed_after,
        completed_before=completed_before,
        external_ref=external_ref,
    )
    return Page[CompletionOut](
        items=[CompletionOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{completion_id}",
    operation_id="get_completion",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Get a completion",
    response_model=CompletionOut,
)
async def get_completion(
    completion_id: uuid.UUID,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> CompletionOut:
    return CompletionOut.model_validate(
        await service.get_completion(session, principal, completion_id)
    )
