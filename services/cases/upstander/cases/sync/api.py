"""Routes of HR sync under `/cases/v1`: the case change feed and external references."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Response

from upstander.cases.access import CaseCtx, LockedCase, case_router
from upstander.cases.sync import service
from upstander.cases.sync.schemas import (
    SYSTEM_PATTERN,
    ChangeOut,
    ChangePage,
    ExternalRefIn,
    ExternalRefOut,
)
from upstander.kit.errors import BadRequest, problem_responses
from upstander.kit.pagination import cursor_query
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["cases"])

System = Annotated[
    str,
    Query(
        pattern=SYSTEM_PATTERN,
        description="The other system's name, e.g. `workday`.",
        examples=["workday"],
    ),
]


@router.get(
    "/changes",
    operation_id="list_case_changes",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="The case change feed (for syncs)",
    description=(
        "Every committed change to the cases you may see, in commit order, from `cursor` "
        "on (omit it to start from the beginning). Keep `next_cursor` and pass it back: no "
        "change is skipped or repeated across pages, even while cases change. Entries are "
        "ids and metadata only (no report content); cases hidden from you never appear. "
        "Webhooks (`upstander.case.*`) are hints to call this; the feed is the truth."
    ),
    response_model=ChangePage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_case_changes(
    ctx: CaseCtx,
    cursor: str | None = cursor_query("`next_cursor` of the previous call."),
    since: str | None = cursor_query("The same as `cursor` (either name)."),
    limit: int = Query(100, ge=1, le=service.FEED_MAX_LIMIT, description="Changes per page."),
) -> ChangePage:
    if cursor is not None and since is not None and cursor != since:
        raise BadRequest("Send `cursor` or `since`, not two different positions.")
    after = service.decode_feed_cursor(cursor if cursor is not None else since)
    entries, position, more = await service.changes(
        ctx.session, ctx.principal, after=after, limit=limit
    )
    await ctx.audit("case.changes", detail={"case_ids": [str(e.case.id) for e in entries]})
    return ChangePage(
        items=[
            ChangeOut(
                case_id=entry.case.id,
                number=entry.case.number,
                change="created" if entry.change.kind == "created" else "updated",
                changed_at=None if entry.change.kind == "created" else entry.change.changed_at,
                status=entry.case.status,
                version=entry.case.version,
                external_refs=[
                    ExternalRefOut(system=ref.system, id=ref.external_id) for ref in entry.refs
                ],
            )
            for entry in entries
        ],
        next_cursor=service.encode_feed_cursor(position),
        has_more=more,
    )


@router.put(
    "/cases/{case_id}/external-refs",
    operation_id="set_case_external_ref",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Record what another system calls the case",
    description=(
        "Idempotent: the same reference again changes nothing. Unique per organisation and "
        "system (409 if another case has it); one per case and system (a new id replaces "
        "the old). Find the case again with `GET /cases/v1/cases?external_ref=workday:E-1042`."
    ),
    response_model=ExternalRefOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_case_external_ref(
    case_id: uuid.UUID, body: ExternalRefIn, case: LockedCase, ctx: CaseCtx
) -> ExternalRefOut:
    row, changed = await service.set_external_ref(
        ctx.session, case, body.system, body.id, now=ctx.now
    )
    if changed:
        await ctx.audit("case.external_ref.set", case, detail={"system": row.system})
    return ExternalRefOut(system=row.system, id=row.external_id)


@router.delete(
    "/cases/{case_id}/external-refs",
    operation_id="delete_case_external_ref",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Forget what another system calls the case",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_case_external_ref(
    case_id: uuid.UUID, system: System, case: LockedCase, ctx: CaseCtx
) -> Response:
    await service.delete_external_ref(ctx.session, case, system)
    await ctx.audit("case.external_ref.delete", case, detail={"system": system})
    return Response(status_code=204)
