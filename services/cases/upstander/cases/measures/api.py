"""Routes of interim measures and corrective actions (through `VisibleCase` / `LockedCase`,
audited)."""

from __future__ import annotations

import uuid

from fastapi import Header, Response

from upstander.cases.access import CaseCtx, LockedCase, VisibleCase, case_router
from upstander.cases.measures import service
from upstander.cases.measures.schemas import (
    ActionIn,
    ActionList,
    ActionOut,
    ActionUpdate,
    MeasureIn,
    MeasureList,
    MeasureOut,
)
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["measures"])


@router.post(
    "/cases/{case_id}/interim-measures",
    operation_id="create_interim_measure",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Record an interim measure",
    description=(
        "`no_contact`, `schedule_change`, `reporting_line_change`, `leave`, `remote_work` or "
        "`other`, approved by a person (who must have no conflict of interest: 409). A "
        "measure that changes the reporter's own work needs `reporter_consented` (422): "
        "protective measures must not burden the person who reported."
    ),
    status_code=201,
    response_model=MeasureOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_interim_measure(case: VisibleCase, body: MeasureIn, ctx: CaseCtx) -> MeasureOut:
    measure = await service.add_measure(
        ctx.session,
        ctx.principal,
        case,
        kind=body.kind,
        affects=body.affects,
        reporter_consented=body.reporter_consented,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        approved_by=body.approved_by,
        notes=body.notes,
        vault=ctx.vault,
        now=ctx.now,
    )
    await ctx.audit(
        "measure.create", case, detail={"measure_id": str(measure.id), "kind": body.kind.value}
    )
    return MeasureOut.model_validate(measure)


@router.get(
    "/cases/{case_id}/interim-measures",
    operation_id="list_interim_measures",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="A case's interim measures",
    response_model=MeasureList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_interim_measures(case: VisibleCase, ctx: CaseCtx) -> MeasureList:
    items = [MeasureOut.model_validate(m) for m in await service.list_measures(ctx.session, case)]
    await ctx.audit("measure.list", case)
    return MeasureList(items=items)


@router.post(
    "/cases/{case_id}/corrective-actions",
    operation_id="create_corrective_action",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Record a corrective action and its deadline",
    description=(
        "The description is sealed under the case's key. The deadline scheduler warns before "
        "`due_at` and when it is missed, until the action is completed."
    ),
    status_code=201,
    response_model=ActionOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_corrective_action(case: VisibleCase, body: ActionIn, ctx: CaseCtx) -> ActionOut:
    action = await service.add_action(
        ctx.session,
        ctx.principal,
        case,
        description=body.description,
        owner_person_id=body.owner_person_id,
        due_at=body.due_at,
        vault=ctx.vault,
        now=ctx.now,
    )
    await ctx.audit("action.create", case, detail={"action_id": str(action.id)})
    return ActionOut.model_validate(action)


@router.get(
    "/cases/{case_id}/corrective-actions",
    operation_id="list_corrective_actions",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="A case's corrective actions",
    response_model=ActionList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_corrective_actions(case: VisibleCase, ctx: CaseCtx) -> ActionList:
    items = [ActionOut.model_validate(a) for a in await service.list_actions(ctx.session, case)]
    await ctx.audit("action.list", case)
    return ActionList(items=items)


@router.post(
    "/cases/{case_id}/corrective-actions/{action_id}/completion",
    operation_id="complete_corrective_action",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Mark a corrective action done",
    response_model=ActionOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def complete_corrective_action(
    case_id: uuid.UUID,  # unused: keeps the path's ids in order in the docs (see access.py)
    action_id: uuid.UUID,
    case: LockedCase,
    ctx: CaseCtx,
) -> ActionOut:
    action = await service.complete_action(ctx.session, case, action_id, now=ctx.now)
    await ctx.audit("action.complete", case, detail={"action_id": str(action.id)})
    return ActionOut.model_validate(action)


@router.patch(
    "/cases/{case_id}/corrective-actions/{action_id}",
    operation_id="update_corrective_action",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Change a corrective action",
    description=(
        "Description, owner, due date or status. `status` moves `open → in_progress → done` "
        "(or back to `open`), or to `cancelled`; `done` and `cancelled` are final (409). A new "
        "owner must have no conflict of interest on the case (409 `conflict-of-interest`). "
        "Send `If-Match` with the action's ETag (its `version`); a stale one is 412. A new "
        "`due_at` is a new deadline: it is announced again before and when it falls due."
    ),
    response_model=ActionOut,
    responses={
        200: {
            "headers": {
                "ETag": {"description": "The action's version.", "schema": {"type": "string"}}
            }
        },
        **problem_responses(401, 403, 404, 409, 412, 422),
    },
)
async def update_corrective_action(
    case_id: uuid.UUID,  # unused: keeps the path's ids in order in the docs (see access.py)
    action_id: uuid.UUID,
    case: LockedCase,
    body: ActionUpdate,
    ctx: CaseCtx,
    response: Response,
    if_match: str | None = Header(
        None, alias="If-Match", max_length=200, description='The action\'s ETag, e.g. `"2"`.'
    ),
) -> ActionOut:
    changes = {key: getattr(body, key) for key in body.model_fields_set}
    action = await service.update_action(
        ctx.session, case, action_id, changes=changes, if_match=if_match, now=ctx.now
    )
    await ctx.audit(
        "action.update", case, detail={"action_id": str(action.id), "fields": sorted(changes)}
    )
    response.headers["ETag"] = f'"{action.version}"'
    return ActionOut.model_validate(action)
