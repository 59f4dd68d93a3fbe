"""Routes of impartial assignment: assign and unassign handlers, recuse yourself, share a
reviewers-only case. Refusals for a conflict of interest are 409 `conflict-of-interest` with
the `rule` broken and never the person it relates to."""

from __future__ import annotations

import uuid

from fastapi import Response

from upstander.cases.access import (
    AssignerCtx,
    AssignerLockedCase,
    CaseCtx,
    LockedCase,
    SharerCtx,
    SharerVisibleCase,
    VisibleCase,
    case_router,
)
from upstander.cases.assignments import service
from upstander.cases.assignments.schemas import (
    AssignmentIn,
    AssignmentList,
    AssignmentOut,
    RecusalOut,
    ShareIn,
    ShareOut,
)
from upstander.cases.problems import merge_responses, problem_example
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_person, require_scope

router = case_router(tags=["assignments"])

CONFLICT_PROBLEMS = merge_responses(
    problem_responses(401, 403, 404, 409, 422),
    {
        409: problem_example(
            409,
            "conflict-of-interest",
            "This person cannot handle this case. They are above a person involved in the "
            "reporting chain.",
            rule="above_involved",
        )
    },
)


@router.post(
    "/cases/{case_id}/assignments",
    operation_id="create_assignment",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Assign someone to a case",
    description=(
        "Designate an `investigator`, `case_manager` or `reviewer` (they must hold that role "
        "in the directory). Refused with 409 `conflict-of-interest` and a `rule`: `involved`, "
        "`excluded` (by the reporter), `recused`, `above_involved` (above an involved person "
        "in the reporting chain) or `reports_to_involved`. Assigned people see the case."
    ),
    status_code=201,
    response_model=AssignmentOut,
    responses=CONFLICT_PROBLEMS,
)
async def create_assignment(
    case: AssignerLockedCase, body: AssignmentIn, ctx: AssignerCtx
) -> AssignmentOut:
    assignment = await service.assign(
        ctx.session,
        ctx.principal,
        case,
        person_id=body.person_id,
        role=body.role,
        now=ctx.now,
        events=ctx.events,
    )
    await ctx.audit(
        "assignment.create",
        case,
        detail={"person_id": str(body.person_id), "role": body.role.value},
    )
    return AssignmentOut.model_validate(assignment)


@router.get(
    "/cases/{case_id}/assignments",
    operation_id="list_assignments",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="Who is assigned to a case",
    response_model=AssignmentList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_assignments(case: VisibleCase, ctx: CaseCtx) -> AssignmentList:
    assignments = await service.list_assignments(ctx.session, case)
    items = [AssignmentOut.model_validate(a) for a in assignments]
    await ctx.audit("assignment.list", case)
    return AssignmentList(items=items)


@router.delete(
    "/cases/{case_id}/assignments/{assignment_id}",
    operation_id="delete_assignment",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Unassign someone",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_assignment(
    case_id: uuid.UUID,  # unused: keeps the path's ids in order in the docs (see access.py)
    assignment_id: uuid.UUID,
    case: AssignerLockedCase,
    ctx: AssignerCtx,
) -> Response:
    removed = await service.unassign(ctx.session, case, assignment_id)
    await ctx.audit(
        "assignment.delete",
        case,
        detail={"person_id": str(removed.person_id), "role": removed.role.value},
    )
    return Response(status_code=204)


@router.post(
    "/cases/{case_id}/recusal",
    operation_id="create_recusal",
    dependencies=[require_person()],
    summary="Recuse yourself from a case",
    description=(
        "You step away from the case: your assignments and shares on it end and it is hidden "
        "from you from now on (404), whatever your role. It cannot be undone by you."
    ),
    status_code=201,
    response_model=RecusalOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_recusal(case: LockedCase, ctx: CaseCtx) -> RecusalOut:
    # Announced (`case.restricted`): notify withdraws what it told them of the case.
    person_id = await service.recuse(
        ctx.session, ctx.principal, case, now=ctx.now, events=ctx.events
    )
    await ctx.audit("recusal.create", case)
    return RecusalOut(case_id=case.id, person_id=person_id, recused_at=ctx.now)


@router.post(
    "/cases/{case_id}/shares",
    operation_id="create_share",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Share a case with someone (reviewers)",
    description=(
        "A reviewer lets a person see a case, typically one routed to reviewers only. The "
        "same conflict-of-interest rules as for assignments apply."
    ),
    status_code=201,
    response_model=ShareOut,
    responses=CONFLICT_PROBLEMS,
)
async def create_share(case: SharerVisibleCase, body: ShareIn, ctx: SharerCtx) -> ShareOut:
    shared = await service.share(
        ctx.session, ctx.principal, case, person_id=body.person_id, now=ctx.now
    )
    await ctx.audit("share.create", case, detail={"person_id": str(body.person_id)})
    return ShareOut.model_validate(shared)
