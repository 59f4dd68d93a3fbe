"""Route of legal holds (admins): a case on hold is never deleted by the retention pass."""

from __future__ import annotations

import uuid

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import record
from upstander.cases.cases.schemas import CaseOut
from upstander.cases.cases.service import visible_case
from upstander.cases.retention import service
from upstander.cases.retention.schemas import LegalHoldIn
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses

router = make_router(prefix="/cases/v1", tags=["retention"])


@router.put(
    "/cases/{case_id}/legal-hold",
    operation_id="put_legal_hold",
    summary="Put a case on legal hold, or lift the hold",
    description=(
        "Finished cases are deleted `retention_days_after_close` days after closing (see "
        "`put_case_settings`; 4 years by default). A case on hold is kept until the hold is "
        "lifted. A `reason` is required to put a hold on (422); it is sealed. Admins only, "
        "and only on cases they may see (404 otherwise)."
    ),
    response_model=CaseOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def put_legal_hold(
    case_id: uuid.UUID,
    body: LegalHoldIn,
    request: Request,
    principal: Principal = require_roles(Role.ADMIN),
    session: AsyncSession = Depends(get_session),
) -> CaseOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    await service.set_legal_hold(
        session, case, on=body.on, reason=body.reason, vault=request.app.state.vault, now=now
    )
    await record(
        session, principal, "case.legal_hold", at=now, case_id=case.id, detail={"on": body.on}
    )
    return CaseOut.model_validate(case)
