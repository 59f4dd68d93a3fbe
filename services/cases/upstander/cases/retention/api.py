"""Route of legal holds (admins): a case on hold is never deleted by the retention pass."""

from __future__ import annotations

from upstander.cases.access import AdminCtx, AdminLockedCase, case_router
from upstander.cases.cases.schemas import CaseOut
from upstander.cases.retention import service
from upstander.cases.retention.schemas import LegalHoldIn
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["retention"])


@router.put(
    "/cases/{case_id}/legal-hold",
    operation_id="put_legal_hold",
    dependencies=[require_scope(Scope.CASES_ADMIN)],
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
async def put_legal_hold(case: AdminLockedCase, body: LegalHoldIn, ctx: AdminCtx) -> CaseOut:
    await service.set_legal_hold(
        ctx.session, case, on=body.on, reason=body.reason, vault=ctx.vault, now=ctx.now
    )
    await ctx.audit("case.legal_hold", case, detail={"on": body.on})
    return CaseOut.model_validate(case)
