"""Routes of retaliation check-ins, for the reporter (token from `POST /auth/receipt`)."""

from __future__ import annotations

import uuid

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases.service import reporter_case
from upstander.cases.checkins import service
from upstander.cases.checkins.schemas import CheckinAnswer, CheckinList, CheckinOut
from upstander.cases.models import RetaliationCheckin
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, reporter
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses

router = make_router(prefix="/cases/v1/reporter", tags=["reporter"])


def _out(checkin: RetaliationCheckin) -> CheckinOut:
    out = CheckinOut.model_validate(checkin)
    out.follow_up_opened = checkin.follow_up_case_id is not None
    return out


@router.get(
    "/checkins",
    operation_id="list_reporter_checkins",
    summary="Your retaliation check-ins",
    description=(
        "After your case closes we ask you (30 and 90 days later, unless your organisation "
        "chose other days) whether you have faced retaliation for reporting. Each question is "
        "also a message in your conversation."
    ),
    response_model=CheckinList,
    responses=problem_responses(401, 403, 404),
)
async def list_reporter_checkins(
    principal: Principal = Depends(reporter),
    session: AsyncSession = Depends(get_session),
) -> CheckinList:
    case = await reporter_case(session, principal)
    return CheckinList(items=[_out(c) for c in await service.list_checkins(session, case)])


@router.post(
    "/checkins/{checkin_id}",
    operation_id="answer_reporter_checkin",
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
    checkin_id: uuid.UUID,
    body: CheckinAnswer,
    request: Request,
    principal: Principal = Depends(reporter),
    session: AsyncSession = Depends(get_session),
) -> CheckinOut:
    case = await reporter_case(session, principal)
    checkin = await service.answer_checkin(
        session,
        case,
        checkin_id,
        retaliation=body.retaliation,
        details=body.details,
        vault=request.app.state.vault,
        events=request.app.state.events,
        clock=request.app.state.clock,
    )
    return _out(checkin)
