"""Routes of HR sync under `/cases/v1`: the case change feed and external references."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query, Response
from sqlalchemy import select

from upstander.cases.access import CaseCtx, LockedCase, case_router
from upstander.cases.audit.service import record
from upstander.cases.cases.schemas import CaseOut
from upstander.cases.cases.service import visibility
from upstander.cases.models import Case
from upstander.cases.problems import InvalidRequest
from upstander.cases.report.service import Shredded, read_report
from upstander.cases.sync import service
from upstander.cases.sync.schemas import (
    SYSTEM_PATTERN,
    ChangeOut,
    ChangePage,
    ExternalRefIn,
    ExternalRefOut,
    HrCaseIn,
    OpenedCaseOut,
)
from upstander.kit.auth import insufficient_scope
from upstander.kit.clock import for_reporter
from upstander.kit.errors import BadRequest, NotFound, problem_responses
from upstander.kit.pagination import cursor_query
from upstander.kit.scopes import Scope, held_scopes, require_scope

router = case_router(tags=["cases"])

System = Annotated[
    str,
    Query(
        pattern=SYSTEM_PATTERN,
        description="The other system's name, e.g. `workday`.",
        examples=["workday"],
    ),
]


@router.post(
    "/cases",
    operation_id="open_case",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Open a case another system received (HR system, hotline)",
    description=(
        "For a report your HR system received by phone, email or in person: the case is "
        "opened exactly like a report from the reporting form (deadlines from `received_at`, "
        "the people involved, excluded or above them never see it, routing to independent "
        "reviewers when leadership is involved, `upstander.case.opened`), and the report is "
        "sealed under the case's key (`source: hr_system` in `get_case_report`). "
        "Idempotent on `external_ref`: the same reference again returns the case already "
        "opened with 200 (201 when new), whatever else the body says; `Idempotency-Key` "
        "works as on every write. `case` is null in the answer when the new case is hidden "
        "from you. An invalid body is 422; a reference of a deleted case is 409."
    ),
    status_code=201,
    response_model=OpenedCaseOut,
    responses={
        200: {
            "description": "A case with this external reference was already open.",
            "model": OpenedCaseOut,
        },
        201: {
            "headers": {
                "Location": {"description": "The case's URL.", "schema": {"type": "string"}}
            }
        },
        **problem_responses(401, 403, 409, 422),
    },
)
async def open_case(body: HrCaseIn, ctx: CaseCtx, response: Response) -> OpenedCaseOut:
    received_at = body.received_at or ctx.now
    if received_at > ctx.now:
        raise InvalidRequest("body.received_at", "received_at is in the future.")
    case, created = await service.open_hr_case(
        ctx.session,
        org_id=ctx.org_id,
        system=body.external_ref.system,
        external_id=body.external_ref.id,
        data=body.report_data(),
        received_at=received_at,
        vault=ctx.vault,
        events=ctx.events,
        clock=ctx.clock,
    )
    await record(
        ctx.session,
        ctx.principal,
        "case.open" if created else "case.open.repeat",
        at=for_reporter(ctx.now, case.reporter_mode),
        case_id=case.id,
        detail={"system": body.external_ref.system.lower()},
    )
    shown = await ctx.session.scalar(
        select(Case.id).where(Case.id == case.id, await visibility(ctx.session, ctx.principal))
    )
    refs = (await service.external_refs(ctx.session, [case.id]))[case.id]
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/cases/v1/cases/{case.id}"
    return OpenedCaseOut(
        id=case.id,
        number=case.number,
        external_refs=[ExternalRefOut(system=r.system, id=r.external_id) for r in refs],
        case=CaseOut.model_validate(case) if shown is not None else None,
    )


@router.get(
    "/changes",
    operation_id="list_case_changes",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="The case change feed (for syncs)",
    description=(
        "Every committed change to the cases you may see, in commit order, from `cursor` "
        "on (omit it to start from the beginning). Keep `next_cursor` and pass it back: no "
        "change is skipped or repeated across pages, even while cases change. Entries are "
        "ids and metadata; with `include=report` (and `cases:content`) they also carry the "
        "report, each read audited. Cases hidden from you never appear; a case deleted past its "
        "retention appears once more as a tombstone (`change: deleted`, its id only) to "
        "callers whose roles open its routing. "
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
    include: Literal["report"] | None = Query(
        None,
        description="`report`: each entry also carries what was reported (needs "
        "`cases:content`; 403 without it). Each report given out is audited as a "
        "`report.read`.",
        examples=["report"],
    ),
) -> ChangePage:
    if cursor is not None and since is not None and cursor != since:
        raise BadRequest("Send `cursor` or `since`, not two different positions.")
    after = service.decode_feed_cursor(cursor if cursor is not None else since)
    entries, position, more = await service.changes(
        ctx.session, ctx.principal, after=after, limit=limit
    )
    with_content = include == "report"
    if with_content and Scope.CASES_CONTENT not in held_scopes(ctx.principal):
        raise insufficient_scope(
            [Scope.CASES_CONTENT.value], "The report needs the `cases:content` scope."
        )
    await ctx.audit(
        "case.changes",
        detail={"case_ids": [str(e.case.id) for e in entries], "content": with_content},
    )
    items: list[ChangeOut] = []
    for entry in entries:
        tombstone = entry.change.kind == "deleted"
        report = None
        if with_content and not tombstone:
            try:
                report = await read_report(ctx.session, entry.case)
            except (Shredded, NotFound):
                report = None
            else:
                await ctx.audit("report.read", entry.case, detail={"via": "changes"})
        items.append(
            ChangeOut(
                case_id=entry.case.id,
                number=None if tombstone else entry.case.number,
                change=entry.change.kind,  # type: ignore[arg-type]
                changed_at=None if entry.change.kind == "created" else entry.change.changed_at,
                status=entry.case.status,
                version=entry.case.version,
                external_refs=[
                    ExternalRefOut(system=ref.system, id=ref.external_id) for ref in entry.refs
                ],
                report=report,
            )
        )
    return ChangePage(items=items, next_cursor=service.encode_feed_cursor(position), has_more=more)


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
