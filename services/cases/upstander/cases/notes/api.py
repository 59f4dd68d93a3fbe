"""Routes of investigation notes, for the handlers who may see the case (audited)."""

from __future__ import annotations

import uuid

from fastapi import Depends

from upstander.cases.access import CaseCtx, LockedCase, VisibleCase, case_router
from upstander.cases.notes import service
from upstander.cases.notes.schemas import (
    NoteCorrectionIn,
    NoteDetail,
    NoteIn,
    NoteOut,
    NotePage,
)
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["notes"])

_WHO = (
    "Only handlers who may see the case: anyone involved in it, excluded by the reporter, "
    "above an involved person, or recused gets 404, as for another organisation's case."
)


@router.post(
    "/cases/{case_id}/notes",
    operation_id="create_note",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Write an investigation note",
    description=(
        "Add a note to the case's investigation file, sealed under the case's key. A note is "
        "never edited in place: correct it with `correct_note`, which keeps every earlier "
        f"version readable. {_WHO} Audited as `note.create`."
    ),
    status_code=201,
    response_model=NoteDetail,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def create_note(case: LockedCase, note: NoteIn, ctx: CaseCtx) -> NoteDetail:
    created = await service.create_note(
        ctx.session, ctx.principal, case, body=note.body, vault=ctx.vault, now=ctx.now
    )
    await ctx.audit("note.create", case, detail={"note_id": str(created.id), "version": 1})
    return NoteDetail.of(created)


@router.get(
    "/cases/{case_id}/notes",
    operation_id="list_notes",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="List a case's notes",
    description=(
        "The case's notes as they read now (each note's current version), oldest first. "
        "Page with `limit` and `cursor` (`next_cursor` of the previous page). Earlier "
        f"versions are on `get_note`. {_WHO} Audited as `note.list`."
    ),
    response_model=NotePage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_notes(
    case: VisibleCase, ctx: CaseCtx, page: PageParams = Depends(page_params)
) -> NotePage:
    notes, next_cursor = await service.list_notes(ctx.session, case, page)
    await ctx.audit("note.list", case, detail={"note_ids": [str(n.id) for n in notes]})
    return NotePage(items=[NoteOut.of(n) for n in notes], next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}/notes/{note_id}",
    operation_id="get_note",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Get a note with its versions",
    description=(
        "One note: its current text, and every version (the original and each correction, "
        f"with who wrote it, when and why), oldest first. {_WHO} Audited as `note.read`."
    ),
    response_model=NoteDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_note(case: VisibleCase, note_id: uuid.UUID, ctx: CaseCtx) -> NoteDetail:
    note = await service.get_note(ctx.session, case, note_id)
    await ctx.audit(
        "note.read", case, detail={"note_id": str(note.id), "version": note.current_version}
    )
    return NoteDetail.of(note)


@router.post(
    "/cases/{case_id}/notes/{note_id}/versions",
    operation_id="correct_note",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Correct a note",
    description=(
        "Give a note a new version: its full corrected text, and optionally why. The note "
        "reads as the new version from now on; earlier versions stay readable on "
        f"`get_note`, unchanged. {_WHO} Audited as `note.correct`."
    ),
    status_code=201,
    response_model=NoteDetail,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def correct_note(
    case: LockedCase, note_id: uuid.UUID, correction: NoteCorrectionIn, ctx: CaseCtx
) -> NoteDetail:
    note = await service.correct_note(
        ctx.session,
        ctx.principal,
        case,
        note_id,
        body=correction.body,
        reason=correction.reason,
        vault=ctx.vault,
        now=ctx.now,
    )
    await ctx.audit(
        "note.correct", case, detail={"note_id": str(note.id), "version": note.current_version}
    )
    return NoteDetail.of(note)
