"""Routes of the matching escrow: placing a report in escrow (public), the reporter's view,
release and withdrawal (their receipt token), and an organisation's escrow rules (admins).

No route here says anything to the organisation about an entry: not a count, not a
category. The rules route answers the rules only."""

from __future__ import annotations

from fastapi import Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.escrow import service
from upstander.intake.escrow.models import EscrowEntry, EscrowStatus
from upstander.intake.escrow.schemas import (
    EscrowCreated,
    EscrowIn,
    EscrowSettingsIn,
    EscrowSettingsOut,
    EscrowState,
    ReleaseIn,
)
from upstander.intake.forms import service as forms
from upstander.intake.reports.api import get_settings
from upstander.intake.settings import Settings
from upstander.kit.app import make_router
from upstander.kit.auth import (
    Principal,
    PrincipalKind,
    Role,
    optional_principal,
    reporter,
    require_roles,
)
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.scopes import Scope, reporter_token, require_scope

router = make_router(prefix="/intake/v1", tags=["escrow"])

_MESSAGES = {
    EscrowStatus.WAITING: (
        "Your report is held. Nobody at the organisation can see it, or that it exists. It "
        "stays here until someone else names the same person, or until it expires."
    ),
    EscrowStatus.MATCHED: (
        "Someone else has named the same person. You may now release your report (choose "
        "how: anonymous, confidential or identified), or withdraw it."
    ),
    EscrowStatus.RELEASED: "Your report was released to the people who handle cases.",
    EscrowStatus.WITHDRAWN: "You withdrew this entry; what you wrote was destroyed.",
    EscrowStatus.EXPIRED: "This entry expired without a match; what you wrote was destroyed.",
}

_ESCROW_SECURITY = {"security": [{}, {"OAuth2": ["intake:write"]}, {"BearerJWT": ["intake:write"]}]}


def _state(entry: EscrowEntry) -> EscrowState:
    current = EscrowStatus(entry.status)
    return EscrowState(
        escrow_id=entry.id,
        status=current.value,
        created_at=entry.created_at,
        expires_at=entry.expires_at,
        matched_at=entry.matched_at,
        released_at=entry.released_at,
        report_id=entry.id if current == EscrowStatus.RELEASED else None,
        message=_MESSAGES[current],
    )


def _escrow(request: Request) -> service.Escrow:
    escrow = request.app.state.escrow
    assert isinstance(escrow, service.Escrow)
    return escrow


@router.post(
    "/escrow",
    operation_id="create_escrow_entry",
    summary="Hold a report in escrow until someone else names the same person",
    description=(
        "Public. Instead of submitting a report, hold it: it names the person it is about by "
        "one or more `identifiers` (a directory `person` id, a work `email`, a `phone`, a "
        "social `handle` with its `platform`), and is released to the case handlers only "
        "when at least one other, independent reporter names the same person (the "
        "organisation's threshold, default 2) **and** you then choose to release it.\n\n"
        "Nobody at the organisation sees anything of it before that: not a count, not a "
        "category. Identifiers are matched by keyed blind indexes of their normal form "
        "(case, spaces and separators do not matter; an email the directory knows matches "
        "its person's id).\n\n"
        "With a staff token of the organisation the entry is yours (it can be released "
        "identified, and never matches your own other entries); without one it is "
        "anonymous. The answer's `receipt_code` is shown once: exchange it at "
        "`POST /auth/receipt` to follow the entry at `GET /intake/v1/reporter/escrow`. "
        "New entries are rate-limited per source and per organisation."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=EscrowCreated,
    responses={
        201: {"headers": {"Cache-Control": {"schema": {"type": "string"}}}},
        **problem_responses(400, 401, 404, 422, 429),
    },
    openapi_extra=_ESCROW_SECURITY,
)
async def create_escrow_entry(
    body: EscrowIn,
    request: Request,
    response: Response,
    settings: Settings = Depends(get_settings),
    session: AsyncSession = Depends(get_session),
) -> EscrowCreated:
    principal = await optional_principal(request)  # before the session is used (see there)
    form = await forms.get_by_slug(session, body.org)
    person_id = None
    if (
        principal is not None
        and principal.kind == PrincipalKind.STAFF
        and principal.org_id == form.org_id
    ):
        person_id = principal.person_id
    entry, code = await service.create_entry(
        session,
        vault=request.app.state.vault,
        escrow=_escrow(request),
        form=form,
        body=body,
        reporter_person_id=person_id,
        receipt_key=settings.receipt_key,
        now=request.app.state.clock.now(),
    )
    response.headers["Cache-Control"] = "no-store"  # the receipt code is shown once
    return EscrowCreated(
        escrow_id=entry.id,
        receipt_code=code,
        # Always `waiting` here: a match shows on the reporter's own route.
        status=EscrowStatus.WAITING.value,
        expires_at=entry.expires_at,
        message=_MESSAGES[EscrowStatus.WAITING]
        + " Keep your receipt code somewhere safe: it is shown only this once.",
    )


@router.get(
    "/reporter/escrow",
    operation_id="get_reporter_escrow",
    dependencies=[reporter_token()],
    summary="Your escrow entry",
    description=(
        "For the reporter, with the token `POST /auth/receipt` gave for their escrow receipt "
        "code: the entry's `status` (`waiting`, `matched`, `released`, `withdrawn`, "
        "`expired`). A match is told here, and only here."
    ),
    response_model=EscrowState,
    responses=problem_responses(401, 403, 404),
)
async def get_reporter_escrow(
    request: Request,
    response: Response,
    principal: Principal = Depends(reporter),
    session: AsyncSession = Depends(get_session),
) -> EscrowState:
    assert principal.report_id is not None
    entry = await service.read_entry(
        session,
        request.app.state.vault,
        principal.report_id,
        principal.org_id,
        request.app.state.clock.now(),
    )
    response.headers["Cache-Control"] = "no-store"
    return _state(entry)


@router.post(
    "/reporter/escrow/release",
    operation_id="release_reporter_escrow",
    dependencies=[reporter_token()],
    summary="Release your matched escrow entry as a report",
    description=(
        "Once `matched`: your report goes to the case handlers, in the `mode` you choose "
        "(`anonymous`; `confidential` with `reporter`, or the contact you gave in escrow; "
        "`identified` only for an entry made with your staff token). Its case is linked to "
        "the cases of the other released reports of the same match, and routed by the usual "
        "conflict and leadership rules. Your receipt code keeps working for the case. 409 "
        "while `waiting`, or once released, withdrawn or expired."
    ),
    response_model=EscrowState,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def release_reporter_escrow(
    request: Request,
    body: ReleaseIn | None = None,
    principal: Principal = Depends(reporter),
    session: AsyncSession = Depends(get_session),
) -> EscrowState:
    assert principal.report_id is not None
    await service.release(
        session,
        vault=request.app.state.vault,
        events=request.app.state.events,
        entry_id=principal.report_id,
        org_id=principal.org_id,
        body=body or ReleaseIn(),
        now=request.app.state.clock.now(),
    )
    entry = await service.entry_of(session, principal.report_id, principal.org_id)
    return _state(entry)


@router.post(
    "/reporter/escrow/withdraw",
    operation_id="withdraw_reporter_escrow",
    dependencies=[reporter_token()],
    summary="Withdraw your escrow entry",
    description=(
        "Until it is released: the entry stops matching and what you wrote is destroyed "
        "(its data key is deleted). Withdrawing again answers the same; 409 once released."
    ),
    response_model=EscrowState,
    responses=problem_responses(401, 403, 404, 409),
)
async def withdraw_reporter_escrow(
    request: Request,
    principal: Principal = Depends(reporter),
    session: AsyncSession = Depends(get_session),
) -> EscrowState:
    assert principal.report_id is not None
    entry = await service.withdraw(
        session,
        request.app.state.vault,
        principal.report_id,
        principal.org_id,
        request.app.state.clock.now(),
    )
    return _state(entry)


@router.get(
    "/escrow-settings",
    operation_id="get_escrow_settings",
    dependencies=[require_scope(Scope.ORG_READ)],
    summary="Your organisation's escrow rules",
    description=(
        "Admins: how many independent reporters must name the same person before entries "
        "match (`threshold`, default 2) and how long an entry waits (`expiry_days`). "
        "Nothing about any entry."
    ),
    response_model=EscrowSettingsOut,
    responses=problem_responses(401, 403),
)
async def get_escrow_settings(
    request: Request,
    principal: Principal = require_roles(Role.ADMIN),
    session: AsyncSession = Depends(get_session),
) -> EscrowSettingsOut:
    assert principal.org_id is not None
    threshold, days = await service.settings_of(session, principal.org_id, _escrow(request))
    return EscrowSettingsOut(threshold=threshold, expiry_days=days)


@router.put(
    "/escrow-settings",
    operation_id="put_escrow_settings",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Set your organisation's escrow rules",
    description=(
        "Admins. A new threshold applies to matches from now on (entries already matched "
        "stay matched); a new expiry to entries made from now on."
    ),
    response_model=EscrowSettingsOut,
    responses=problem_responses(401, 403, 422),
)
async def put_escrow_settings(
    body: EscrowSettingsIn,
    request: Request,
    principal: Principal = require_roles(Role.ADMIN),
    session: AsyncSession = Depends(get_session),
) -> EscrowSettingsOut:
    assert principal.org_id is not None
    row = await service.put_settings(
        session,
        principal.org_id,
        threshold=body.threshold,
        expiry_days=body.expiry_days,
        now=request.app.state.clock.now(),
    )
    return EscrowSettingsOut(threshold=row.threshold, expiry_days=row.expiry_days)
