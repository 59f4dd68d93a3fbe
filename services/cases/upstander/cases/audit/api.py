"""Routes of the audit trail, for auditors and admins. There is deliberately no route to
change or delete an entry."""

from __future__ import annotations

import uuid

from fastapi import Query

from upstander.cases.access import AuditorCtx, case_router
from upstander.cases.audit import service
from upstander.cases.audit.schemas import AuditEntryOut, AuditPage, AuditVerification, BrokenLink
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import InvalidCursor, cursor_query
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["audit"])


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    # ASCII digits only: "²" is a digit to `isdigit` but not to `int`.
    if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18:
        raise InvalidCursor()
    return int(cursor)


@router.get(
    "/audit",
    operation_id="list_audit_entries",
    dependencies=[require_scope(Scope.AUDIT_READ)],
    summary="Read the audit trail",
    description=(
        "Who read or changed what, oldest first, in chain order. Page with `limit` and "
        "`cursor`; filter with `case_id`. Reading the trail is itself audited.\n\n"
        "Conflict rules hold here too: an entry that names a case hidden from you (you are "
        "involved, excluded by the reporter, above someone involved, or recused; for an API "
        "client, its owner is) comes as a placeholder with `redacted: true` and only `seq`, "
        "`hash` and `prev_hash`, so the chain's links can still be followed. Filtered by a "
        "case hidden from you, the page is empty, as for an unknown case. A deleted case's "
        "history is withheld from everyone except its `case.deleted` entry. An API client "
        "whose owner is gone, or may not read the trail, gets only placeholders."
    ),
    response_model=AuditPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_audit_entries(
    ctx: AuditorCtx,
    case_id: uuid.UUID | None = Query(None, description="Only entries about this case."),
    limit: int = Query(50, ge=1, le=200, description="Items per page."),
    cursor: str | None = cursor_query(),
) -> AuditPage:
    shown, next_cursor = await service.read_page(
        ctx.session,
        ctx.principal,
        ctx.org_id,
        after_seq=_after(cursor),
        limit=limit,
        case_id=case_id,
    )
    items = [
        AuditEntryOut.withheld(e.entry.seq, e.entry.prev_hash, e.entry.hash)
        if e.redacted
        else AuditEntryOut.model_validate(e.entry)
        for e in shown
    ]
    await ctx.audit("audit.read")
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get(
    "/audit/verify",
    operation_id="verify_audit_trail",
    dependencies=[require_scope(Scope.AUDIT_READ)],
    summary="Verify the audit trail",
    description=(
        "Recompute the organisation's hash chain: `{intact: true}`, or `intact: false` with "
        "the first position where an entry was altered, removed or reordered. Every entry "
        "is checked, those about cases hidden from you included, and the answer holds counts "
        "and positions only: the id of a broken entry that names a case hidden from you is "
        "null."
    ),
    response_model=AuditVerification,
    responses={
        200: {
            "content": {
                "application/json": {
                    "examples": {
                        "intact": {"value": {"intact": True, "entries": 42}},
                        "broken": {
                            "value": {
                                "intact": False,
                                "entries": 6,
                                "first_broken": {
                                    "seq": 7,
                                    "id": "7c1e0a52-3b9d-4f0e-8d8e-2f4a6f1d2c3b",
                                },
                            }
                        },
                    }
                }
            }
        },
        **problem_responses(401, 403),
    },
)
async def verify_audit_trail(ctx: AuditorCtx) -> AuditVerification:
    intact, checked, entry, seq = await service.verify(ctx.session, ctx.org_id)
    if intact:
        return AuditVerification(intact=True, entries=checked)
    assert seq is not None
    found = entry.id if entry is not None and entry.seq == seq else None
    if entry is not None and found is not None:
        reader = await service.audit_reader(ctx.session, ctx.principal)
        [shown] = await service.readable(ctx.session, reader, ctx.org_id, [entry])
        found = None if shown.redacted else found
    return AuditVerification(
        intact=False, entries=checked, first_broken=BrokenLink(seq=seq, id=found)
    )
