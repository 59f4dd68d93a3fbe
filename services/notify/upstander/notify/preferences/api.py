"""Routes of a person's own notification preferences."""

from __future__ import annotations

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, current_principal
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import require_person
from upstander.notify.inbox.api import InboxOwner, inbox_owner
from upstander.notify.models import Person, Preference
from upstander.notify.preferences import service
from upstander.notify.preferences.schemas import PreferencesIn, PreferencesOut, QuietHoursOut

router = make_router(prefix="/notify/v1/preferences", tags=["preferences"])


async def _roles(session: AsyncSession, owner: InboxOwner, principal: Principal) -> set[str]:
    """The token's roles and the directory's: either makes a notice mandatory."""
    person = await session.get(Person, owner.person_id)
    directory = set(person.roles or []) if person and person.org_id == owner.org_id else set()
    return set(principal.roles) | directory


def _out(row: Preference | None, roles: set[str]) -> PreferencesOut:
    effective = service.Effective.of(row)
    quiet = None
    if row is not None and row.quiet_start and row.quiet_end:
        quiet = QuietHoursOut(start=row.quiet_start, end=row.quiet_end, timezone=row.timezone)
    return PreferencesOut(
        channels={kind: list(channels) for kind, channels in effective.channels.items()},
        quiet_hours=quiet,
        language=effective.language,
        mandatory=service.mandatory_for(roles),
        updated_at=row.updated_at if row is not None else None,
    )


@router.get(
    "",
    operation_id="get_preferences",
    dependencies=[require_person()],
    summary="Your notification preferences (defaults until you set them)",
    response_model=PreferencesOut,
)
async def get_preferences(
    owner: InboxOwner = Depends(inbox_owner),
    principal: Principal = Depends(current_principal),
    session: AsyncSession = Depends(get_session),
) -> PreferencesOut:
    row = await service.get_row(session, owner.person_id)
    return _out(row, await _roles(session, owner, principal))


@router.put(
    "",
    operation_id="put_preferences",
    dependencies=[require_person()],
    summary="Replace your notification preferences",
    response_model=PreferencesOut,
    responses=problem_responses(422),
)
async def put_preferences(
    body: PreferencesIn,
    request: Request,
    owner: InboxOwner = Depends(inbox_owner),
    principal: Principal = Depends(current_principal),
    session: AsyncSession = Depends(get_session),
) -> PreferencesOut:
    roles = await _roles(session, owner, principal)
    quiet = body.quiet_hours
    row = await service.put_preferences(
        session,
        owner.org_id,
        owner.person_id,
        roles,
        channels={kind: [c.value for c in chans] for kind, chans in body.channels.items()},
        quiet_start=quiet.start if quiet else None,
        quiet_end=quiet.end if quiet else None,
        timezone=quiet.timezone if quiet else "UTC",
        language=body.language,
        now=request.app.state.clock.now(),
    )
    return _out(row, roles)
