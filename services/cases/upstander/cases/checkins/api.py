"""Routes of retaliation check-ins, for the reporter (token from `POST /auth/receipt`)."""

from __future__ import annotations

import uuid

from upstander.cases.access import ReporterCase, ReporterCtx
from upstander.cases.checkins import service
from upstander.cases.checkins.schemas import CheckinAnswer, CheckinList, CheckinOut
from upstander.cases.models import RetaliationCheckin
from upstander.kit.app import make_router
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import reporter_token

router = make_router(prefix="/cases/v1/reporter", tags=["reporter"])


def _out(checkin: RetaliationCheckin) -> CheckinOut:
    out = CheckinOut.model_validate(checkin)
    out.follow_up_opened = checkin.follow_up_case_id is not None
    return out


@router.get(
    "/checkins",
    operation_id="list_reporter_checkins",
    dependencies=[reporter_token()],
    summary="Your retaliation check-ins",
    description=(
        "After your case closes we ask you (30 and 90 days later, unless your organisation "
        "chose other days) whether you have faced retaliation for reporting. Each question is "
        "also a message in your conversation."
    ),
    response_model=CheckinList,
    responses=problem_responses(401, 403, 404),
)
async def list_reporter_checkins(case: ReporterCase, ctx: ReporterCtx) -> CheckinList:
    return CheckinList(items=[_out(c) for c in await service.list_checkins(ctx.session, case)])


@router.post(
    "/checkins/{checkin_id}",
    operation_id="answer_reporter_checkin",
    dependencies=[reporter_token()],
    summary="Answer a retaliation check-in",
    description=(
        "`retaliation: true` opens a new case about it, linked to yours, with high priority, "
        "hidden from everyone your case is hidden from. `details` are sealed. A check-in is "
        "answered once (409 after)."
    ),
    response_model=CheckinOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def answer_reporter_checkin(
    checkin_id: uuid.UUID, body: CheckinAnswer, case: ReporterCase, ctx: ReporterCtx
) -> CheckinOut:
    checkin = await service.answer_checkin(
        ctx.session,
        case,
        checkin_id,
        retaliation=body.retaliation,
        details=body.details,
        vault=ctx.vault,
        events=ctx.events,
        clock=ctx.clock,
    )
    return _out(checkin)
