"""Admin routes for notification rules: the effective rules, an org's overrides of them."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import Depends, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, require_scope
from upstander.notify.rules import service
from upstander.notify.rules.defaults import Rule
from upstander.notify.rules.schemas import EVENT_TYPE_PATTERN, RuleIn, RuleList, RuleOut

router = make_router(prefix="/notify/v1/rules", tags=["rules"])

Admin = require_roles("admin")
EventType = Path(
    pattern=EVENT_TYPE_PATTERN,
    max_length=128,
    examples=["upstander.case.opened"],
    description="An event type, or a shell pattern of them (`upstander.case.*`).",
)


def _org(principal: Principal) -> uuid.UUID:
    assert principal.org_id is not None
    return principal.org_id


def _out(rule: Rule) -> RuleOut:
    return RuleOut.model_validate(asdict(rule))


@router.get(
    "",
    operation_id="list_notification_rules",
    dependencies=[require_scope(Scope.NOTIFICATIONS_MANAGE)],
    summary="Which events reach whom, through which channels (defaults and your overrides)",
    response_model=RuleList,
)
async def list_notification_rules(
    principal: Principal = Admin, session: AsyncSession = Depends(get_session)
) -> RuleList:
    return RuleList(items=[_out(r) for r in await service.list_rules(session, _org(principal))])


@router.put(
    "/{event_type}",
    operation_id="put_notification_rule",
    dependencies=[require_scope(Scope.NOTIFICATIONS_MANAGE)],
    summary="Override the rule for an event type (or pattern) in your org",
    response_model=RuleOut,
    responses=problem_responses(400),
)
async def put_notification_rule(
    body: RuleIn,
    request: Request,
    event_type: str = EventType,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> RuleOut:
    rule = await service.put_rule(
        session,
        _org(principal),
        event_type,
        recipients=list(body.recipients),
        channels=[c.value for c in body.channels],
        urgent=body.urgent,
        now=request.app.state.clock.now(),
    )
    return _out(rule)


@router.delete(
    "/{event_type}",
    operation_id="delete_notification_rule",
    dependencies=[require_scope(Scope.NOTIFICATIONS_MANAGE)],
    summary="Drop your override; the shipped default applies again",
    status_code=204,
    response_class=Response,
)
async def delete_notification_rule(
    event_type: str = EventType,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> Response:
    await service.delete_rule(session, _org(principal), event_type)
    return Response(status_code=204)
