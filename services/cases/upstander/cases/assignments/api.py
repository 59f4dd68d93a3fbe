"""Routes of impartial assignment: assign and unassign handlers, recuse yourself, share a
reviewers-only case. Refusals for a conflict of interest are 409 `conflict-of-interest` with
the `rule` broken and never the person it relates to."""

from __future__ import annotations

import uuid

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.assignments import service
from upstander.cases.assignments.schemas import (
    AssignmentIn,
    AssignmentList,
    AssignmentOut,
    RecusalOut,
    ShareIn,
    ShareOut,
)
from upstander.cases.audit.service import record
from upstander.cases.cases.service import visible_case
from upstander.cases.problems import merge_responses, problem_example
from upstander.cases.roles import HANDLERS
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses

router = make_router(prefix="/cases/v1", tags=["assignments"])

ASSIGNERS = (Role.CASE_MANAGER, Role.REVIEWER, Role.ADMIN)
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
    case_id: uuid.UUID,
    body: AssignmentIn,
    request: Request,
    principal: Principal = require_roles(*ASSIGNERS),
    session: AsyncSession = Depends(get_session),
) -> AssignmentOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    assignment = await service.assign(
        session,
        principal,
        case,
        person_id=body.person_id,
        role=body.role,
        now=now,
        events=request.app.state.events,
    )
    await record(
        session,
        principal,
        "assignment.create",
        at=now,
        case_id=case.id,
        detail={"person_id": str(body.person_id), "role": body.role.value},
    )
    return AssignmentOut.model_validate(assignment)


@router.get(
    "/cases/{case_id}/assignments",
    operation_id="list_assignments",
    summary="Who is assigned to a case",
    response_model=AssignmentList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_assignments(
    case_id: uuid.UUID,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> AssignmentList:
    case = await visible_case(session, principal, case_id)
    items = [AssignmentOut.model_validate(a) for a in await service.list_assignments(session, case)]
    await record(
        session, principal, "assignment.list", at=request.app.state.clock.now(), case_id=case.id
    )
    return AssignmentList(items=items)


@router.delete(
    "/cases/{case_id}/assignments/{assignment_id}",
    operation_id="delete_assignment",
    summary="Unassign someone",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_assignment(
    case_id: uuid.UUID,
    assignment_id: uuid.UUID,
    request: Request,
    principal: Principal = require_roles(*ASSIGNERS),
    session: AsyncSession = Depends(get_session),
) -> Response:
    case = await visible_case(session, principal, case_id, for_update=True)
    removed = await service.unassign(session, case, assignment_id)
    await record(
        session,
        principal,
        "assignment.delete",
        at=request.app.state.clock.now(),
        case_id=case.id,
        detail={"person_id": str(removed.person_id), "role": removed.role.value},
    )
    return Response(status_code=204)


@router.post(
    "/cases/{case_id}/recusal",
    operation_id="create_recusal",
    summary="Recuse yourself from a case",
    description=(
        "You step away from the case: your assignments and shares on it end and it is hidden "
        "from you from now on (404), whatever your role. It cannot be undone by you."
    ),
    status_code=201,
    response_model=RecusalOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_recusal(
    case_id: uuid.UUID,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> RecusalOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    person_id = await service.recuse(session, principal, case, now=now)
    await record(session, principal, "recusal.create", at=now, case_id=case.id)
    return RecusalOut(case_id=case.id, person_id=person_id, recused_at=now)


@router.post(
    "/cases/{case_id}/shares",
    operation_id="create_share",
    summary="Share a case with someone (reviewers)",
    description=(
        "A reviewer lets a person see a case, typically one routed to reviewers only. The "
        "same conflict-of-interest rules as for assignments apply."
    ),
    status_code=201,
    response_model=ShareOut,
    responses=CONFLICT_PROBLEMS,
)
async def create_share(
    case_id: uuid.UUID,
    body: ShareIn,
    request: Request,
    principal: Principal = require_roles(Role.REVIEWER),
    session: AsyncSession = Depends(get_session),
) -> ShareOut:
    case = await visible_case(session, principal, case_id)
    now = request.app.state.clock.now()
    shared = await service.share(session, principal, case, person_id=body.person_id, now=now)
    await record(
        session,
        principal,
        "share.create",
        at=now,
        case_id=case.id,
        detail={"person_id": str(body.person_id)},
    )
    return ShareOut.model_validate(shared)
