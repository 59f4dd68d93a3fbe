"""Routes of the audit trail, for auditors and admins. There is deliberately no route to
change or delete an entry."""

from __future__ import annotations

import uuid

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit import service
from upstander.cases.audit.schemas import AuditEntryOut, AuditPage, AuditVerification, BrokenLink
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import BadRequest, problem_responses

router = make_router(prefix="/cases/v1", tags=["audit"])

AUDITORS = (Role.AUDITOR, Role.ADMIN)


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise BadRequest("The cursor is not valid.")
    return int(cursor)


@router.get(
    "/audit",
    operation_id="list_audit_entries",
    summary="Read the audit trail",
    description=(
        "Who read or changed what, oldest first, in chain order. Page with `limit` and "
        "`cursor`; filter with `case_id`. Reading the trail is itself audited."
    ),
    response_model=AuditPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_audit_entries(
    request: Request,
    case_id: uuid.UUID | None = Query(None, description="Only entries about this case."),
    limit: int = Query(50, ge=1, le=200, description="Items per page."),
    cursor: str | None = Query(None, max_length=20, description="`next_cursor` of a page."),
    principal: Principal = require_roles(*AUDITORS),
    session: AsyncSession = Depends(get_session),
) -> AuditPage:
    assert principal.org_id is not None
    entries = await service.list_entries(
        session, principal.org_id, after_seq=_after(cursor), limit=limit + 1, case_id=case_id
    )
    next_cursor = None
    if len(entries) > limit:
        entries = entries[:limit]
        next_cursor = str(entries[-1].seq)
    items = [AuditEntryOut.model_validate(e) for e in entries]
    await service.record(session, principal, "audit.read", at=request.app.state.clock.now())
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get(
    "/audit/verify",
    operation_id="verify_audit_trail",
    summary="Verify the audit trail",
    description=(
        "Recompute the organisation's hash chain: `{intact: true}`, or `intact: false` with "
        "the first position where an entry was altered, removed or reordered."
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
async def verify_audit_trail(
    principal: Principal = require_roles(*AUDITORS),
    session: AsyncSession = Depends(get_session),
) -> AuditVerification:
    assert principal.org_id is not None
    intact, checked, entry, seq = await service.verify(session, principal.org_id)
    if intact:
        return AuditVerification(intact=True, entries=checked)
    assert seq is not None
    found = entry.id if entry is not None and entry.seq == seq else None
    return AuditVerification(
        intact=False, entries=checked, first_broken=BrokenLink(seq=seq, id=found)
    )
