"""Routes of interviews, for the handlers who may see the case (audited)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends

from upstander.cases.access import CaseCtx, LockedCase, VisibleCase, case_router
from upstander.cases.interviews import service
from upstander.cases.interviews.schemas import (
    InterviewCorrectionIn,
    InterviewDetail,
    InterviewIn,
    InterviewOut,
    InterviewPage,
)
from upstander.cases.interviews.service import InterviewRecord
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import PageParams, page_params
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["interviews"])

_WHO = (
    "Only handlers who may see the case: anyone involved in it, excluded by the reporter, "
    "above an involved person, or recused gets 404, as for another organisation's case."
)


@router.post(
    "/cases/{case_id}/interviews",
    operation_id="create_interview",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Record an interview",
    description=(
        "Record an interview held for the case: who was interviewed (a person of your "
        "directory or a name) and in which role (`reporter`, `witness`, `respondent`, "
        "`other`, all recorded with the same fields), when, by whom (by default you), who "
        "else attended, a summary, the statement, and evidence items of the case. Names, "
        "the summary and the statement are sealed under the case's key. An unknown person "
        "or evidence item is 422; an interviewer with a conflict of interest on the case "
        f"is 409. {_WHO} Audited as `interview.create`."
    ),
    status_code=201,
    response_model=InterviewDetail,
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def create_interview(
    case: LockedCase, interview: InterviewIn, ctx: CaseCtx
) -> InterviewDetail:
    record = InterviewRecord(
        role=interview.role,
        held_at=interview.held_at,
        interviewee_person_id=interview.interviewee.person_id,
        interviewee_name=interview.interviewee.name,
        interviewer_person_ids=list(interview.interviewer_person_ids or []),
        summary=interview.summary,
        statement=interview.statement,
        attendee_person_ids=list(interview.attendees.person_ids),
        attendee_names=list(interview.attendees.names),
        evidence_item_ids=list(interview.evidence_item_ids),
    )
    created = await service.create_interview(
        ctx.session, ctx.principal, case, record, vault=ctx.vault, now=ctx.now
    )
    await ctx.audit(
        "interview.create", case, detail={"interview_id": str(created.id), "version": 1}
    )
    return InterviewDetail.of(created)


@router.get(
    "/cases/{case_id}/interviews",
    operation_id="list_interviews",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="List a case's interviews",
    description=(
        "The case's interviews as they read now (each one's current version), oldest "
        "recorded first. Page with `limit` and `cursor` (`next_cursor` of the previous "
        f"page). Earlier versions are on `get_interview`. {_WHO} Audited as `interview.list`."
    ),
    response_model=InterviewPage,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_interviews(
    case: VisibleCase, ctx: CaseCtx, page: PageParams = Depends(page_params)
) -> InterviewPage:
    interviews, next_cursor = await service.list_interviews(ctx.session, case, page)
    await ctx.audit(
        "interview.list", case, detail={"interview_ids": [str(i.id) for i in interviews]}
    )
    return InterviewPage(items=[InterviewOut.of(i) for i in interviews], next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}/interviews/{interview_id}",
    operation_id="get_interview",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="Get an interview with its versions",
    description=(
        "One interview: its current record, and every version (the original and each "
        f"correction, with who recorded it, when and why), oldest first. {_WHO} Audited as "
        "`interview.read`."
    ),
    response_model=InterviewDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_interview(
    case: VisibleCase, interview_id: uuid.UUID, ctx: CaseCtx
) -> InterviewDetail:
    interview = await service.get_interview(ctx.session, case, interview_id)
    await ctx.audit(
        "interview.read",
        case,
        detail={"interview_id": str(interview.id), "version": interview.current_version},
    )
    return InterviewDetail.of(interview)


@router.post(
    "/cases/{case_id}/interviews/{interview_id}/versions",
    operation_id="correct_interview",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Correct an interview",
    description=(
        "Give an interview a new version: name only the fields that change (the others "
        "carry over) and optionally why. The interview reads as the new version from now "
        "on; earlier versions stay readable on `get_interview`, unchanged. Validated as on "
        f"`create_interview`. {_WHO} Audited as `interview.correct`."
    ),
    status_code=201,
    response_model=InterviewDetail,
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def correct_interview(
    case: LockedCase, interview_id: uuid.UUID, correction: InterviewCorrectionIn, ctx: CaseCtx
) -> InterviewDetail:
    changes: dict[str, Any] = {}
    for name in correction.model_fields_set - {"reason"}:
        value = getattr(correction, name)
        if name == "interviewee":
            changes[name] = (value.person_id, value.name)
        elif name == "attendees":
            changes[name] = (list(value.person_ids), list(value.names))
        else:
            changes[name] = value
    interview = await service.correct_interview(
        ctx.session,
        ctx.principal,
        case,
        interview_id,
        changes,
        reason=correction.reason,
        vault=ctx.vault,
        now=ctx.now,
    )
    await ctx.audit(
        "interview.correct",
        case,
        detail={"interview_id": str(interview.id), "version": interview.current_version},
    )
    return InterviewDetail.of(interview)
