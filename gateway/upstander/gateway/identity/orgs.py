"""The organisations API: platform operators create, list, suspend and reactivate
organisations and invite their admins by one-time links; invited people set their password.

Who is an operator: the API client the gateway's settings name (`UPSTANDER_OPERATOR_CLIENT_ID`
and `UPSTANDER_OPERATOR_CLIENT_SECRET`; dev mode has `platform-operator` /
`demo-operator-secret`), kept in step at each start by `ensure_operator_client`. It belongs
to no organisation, holds only `platform:orgs` (upstander.kit.scopes.OPERATOR_SCOPES), which
no organisation's admin holds or can grant, and reads nothing inside an organisation: every
other route refuses a token without an organisation. An organisation's admin still reads their
own organisation here (`GET /identity/v1/orgs`). See docs/auth.md, "Platform operators".
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import HTMLResponse
from fastapi.security import OAuth2
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.oauth import base_url
from upstander.gateway.auth.passwords import hash_secret, verify_secret
from upstander.gateway.auth.tokens import revoke_person_tokens
from upstander.gateway.identity import service
from upstander.gateway.identity.org_tables import OrgInvitation
from upstander.gateway.identity.schemas import (
    AdminInvite,
    InvitationAccept,
    InvitationAccepted,
    InvitationOut,
    OrgCreate,
    OrgCreated,
    OrgOut,
    PersonCreate,
)
from upstander.gateway.models import ApiClient, Org, Person
from upstander.gateway.settings import DEV_OPERATOR_SECRET, Settings
from upstander.kit.app import make_router
from upstander.kit.auth import (
    Principal,
    PrincipalKind,
    Role,
    TokenRevoked,
    current_principal,
    insufficient_scope,
)
from upstander.kit.clock import Clock
from upstander.kit.db import get_session
from upstander.kit.errors import Conflict, Forbidden, NotFound, ProblemError, problem_responses
from upstander.kit.pagination import Page, PageParams, page_params, paginate
from upstander.kit.revocation import ACCESS_VERSION_CLAIM
from upstander.kit.scopes import (
    BEARER,
    OAUTH2,
    OPERATOR_SCOPES,
    PLATFORM_ORGS,
    TOKEN_URL,
    Scope,
    narrowed_away,
)

log = logging.getLogger("upstander.gateway.orgs")

OPERATOR_KIND = "operator"

router = make_router(prefix="/identity/v1", tags=["identity"])
Session = Annotated[AsyncSession, Depends(get_session)]
Paging = Annotated[PageParams, Depends(page_params)]


class InvalidInvitation(ProblemError):
    """Unknown, used, revoked or expired: one answer for all (it tells a guesser nothing)."""

    status, slug, title = 400, "invalid-invitation", "Invalid invitation"


# ----------------------------------------------------------------------------- the operator

OPERATOR_OAUTH2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=OPERATOR_SCOPES)
    ),
    scheme_name="OperatorOAuth2",
    description="The platform operator's client (`client_credentials`, configured in the "
    "gateway's settings): organisations themselves, never what is inside them. See "
    'docs/auth.md, "Platform operators".',
    auto_error=False,
)


def operator_secret(settings: Settings) -> str | None:
    """The operator client's secret: the configured one, in dev mode the demo one, else none
    (then there is no operator)."""
    if settings.operator_client_secret:
        return settings.operator_client_secret
    return DEV_OPERATOR_SECRET if settings.is_dev else None


async def ensure_operator_client(session: AsyncSession, settings: Settings) -> None:
    """Keep the operator client as the settings say: created, its secret rehashed when it
    changed (its tokens then stop), scope `platform:orgs`; any other operator client, or all
    of them when no secret is configured, deactivated. The caller commits."""
    secret = operator_secret(settings)
    wanted = settings.operator_client_id if secret else None
    operators = (
        await session.scalars(select(ApiClient).where(ApiClient.kind == OPERATOR_KIND))
    ).all()
    for row in operators:
        if row.client_id != wanted and row.active:
            row.active = False
            row.access_version = (row.access_version or 0) + 1
    if secret is None or wanted is None:
        await session.flush()
        return
    client = await session.scalar(select(ApiClient).where(ApiClient.client_id == wanted))
    if client is None:
        session.add(
            ApiClient(
                org_id=None,
                client_id=wanted,
                secret_hash=await hash_secret(secret),
                name="Platform operator",
                scopes=[PLATFORM_ORGS],
                roles=[],
                kind=OPERATOR_KIND,
                active=True,
            )
        )
    elif client.kind != OPERATOR_KIND:
        # Never turn an organisation's client (or a service) into the operator.
        log.error("operator client id is taken by another client; no operator configured")
    else:
        matches, needs_rehash = await verify_secret(client.secret_hash, secret)
        if not matches or needs_rehash:
            client.secret_hash = await hash_secret(secret)
        if not matches or not client.active:
            client.access_version = (client.access_version or 0) + 1
        client.active, client.org_id, client.scopes = True, None, [PLATFORM_ORGS]
    await session.flush()


async def start_operator_client(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session:
        try:
            await ensure_operator_client(session, app.state.settings)
            await session.commit()
        except IntegrityError:
            await session.rollback()  # another replica made it at the same moment


async def _check_operator(session: AsyncSession, principal: Principal) -> None:
    """The token is the configured operator's, still active, signed after its last change."""
    if (
        principal.kind != PrincipalKind.CLIENT
        or principal.org_id is not None
        or PLATFORM_ORGS not in principal.scopes
    ):
        raise insufficient_scope([PLATFORM_ORGS], "This is for platform operators.")
    client = await session.scalar(
        select(ApiClient).where(
            ApiClient.client_id == principal.subject, ApiClient.kind == OPERATOR_KIND
        )
    )
    claimed = principal.claims.get(ACCESS_VERSION_CLAIM)
    if (
        client is None
        or not client.active
        or not isinstance(claimed, int)
        or claimed < (client.access_version or 0)
    ):
        raise TokenRevoked()


async def _operator_gate(
    session: Session,
    principal: Principal = Depends(current_principal),
    _oauth2: Any = Depends(OPERATOR_OAUTH2),
    _bearer: Any = Depends(BEARER),
) -> Principal:
    await _check_operator(session, principal)
    return principal


Operator = Annotated[Principal, Security(_operator_gate, scopes=[PLATFORM_ORGS])]


def is_operator(principal: Principal) -> bool:
    return principal.kind == PrincipalKind.CLIENT and principal.org_id is None


async def _org_reader_gate(
    session: Session,
    principal: Principal = Depends(current_principal),
    _org_scope: Any = Security(OAUTH2, scopes=[Scope.ORG_READ]),
    _operator_scope: Any = Security(OPERATOR_OAUTH2, scopes=[PLATFORM_ORGS]),
    _bearer: Any = Depends(BEARER),
) -> Principal:
    """An operator (every organisation), or an organisation's admin or client with `org:read`
    (their own organisation)."""
    if is_operator(principal):
        await _check_operator(session, principal)
        return principal
    if principal.kind not in (PrincipalKind.STAFF, PrincipalKind.CLIENT) or not principal.org_id:
        raise Forbidden("This endpoint is for staff, API clients and platform operators.")
    if principal.kind == PrincipalKind.CLIENT:
        if Scope.ORG_READ not in principal.scopes:
            raise insufficient_scope(
                [Scope.ORG_READ], "The client's token lacks a scope this endpoint needs."
            )
        return principal
    if not principal.has_role(Role.ADMIN):
        raise Forbidden("Your role does not allow this.")
    missing = narrowed_away(principal, [Scope.ORG_READ])
    if missing:
        raise insufficient_scope(missing, "This token was narrowed to other scopes.")
    return principal


OrgReader = Annotated[Principal, Depends(_org_reader_gate)]


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[Settings, Depends(_settings)]


# ----------------------------------------------------------------------------- the logic


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def get_org(session: AsyncSession, org_id: uuid.UUID) -> Org:
    org = await session.get(Org, org_id)
    if org is None:
        raise NotFound("No such organisation.")
    return org


async def invite_admin(
    session: AsyncSession,
    org: Org,
    data: AdminInvite,
    *,
    invited_by: str,
    clock: Clock,
    ttl_seconds: int,
) -> tuple[Person, str, OrgInvitation]:
    """Make `data` an admin of `org` (a new person, or the one with that email) and issue
    their one-time link; links issued to them before stop working. Returns the person, the
    token (shown once) and its row."""
    email = data.email.lower()
    person = await session.scalar(
        select(Person).where(Person.org_id == org.id, Person.email == email)
    )
    if person is None:
        person = await service.create_person(
            session,
            service.system_principal(org.id),
            PersonCreate(email=email, name=data.name, roles=[Role.ADMIN], language=data.language),
        )
    elif not person.active:
        raise Conflict("This person is deactivated in the organisation; reactivate them first.")
    elif Role.ADMIN not in (person.roles or []):
        person.roles = [*(person.roles or []), str(Role.ADMIN)]
        person.version += 1
    now = clock.now()
    await session.execute(
        update(OrgInvitation)
        .where(
            OrgInvitation.person_id == person.id,
            OrgInvitation.used_at.is_(None),
            OrgInvitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    invitation = OrgInvitation(
        id=uuid.uuid4(),
        org_id=org.id,
        person_id=person.id,
        token_hash=hash_invitation_token(token),
        invited_by=invited_by,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(invitation)
    await session.flush()
    log.info("organisation admin invited", extra={"org_id": str(org.id)})
    return person, token, invitation


async def create_org(
    session: AsyncSession, data: OrgCreate, *, invited_by: str, clock: Clock, ttl_seconds: int
) -> tuple[Org, Person, str, OrgInvitation]:
    org = await service.create_org(session, slug=data.slug, name=data.name)
    person, token, invitation = await invite_admin(
        session, org, data.admin, invited_by=invited_by, clock=clock, ttl_seconds=ttl_seconds
    )
    return org, person, token, invitation


async def set_org_active(session: AsyncSession, org_id: uuid.UUID, active: bool) -> Org:
    """Suspend or reactivate. Suspended: its people cannot sign in, its clients get no token,
    refresh tokens are refused, and every token already issued is refused, by the gateway at
    once and by the services on `upstander.access.changed` (gateway events.py)."""
    org = await get_org(session, org_id)
    if org.active != active:
        org.active = active
        org.version += 1
        await session.flush()
    return org


async def accept_invitation(
    session: AsyncSession, data: InvitationAccept, *, clock: Clock
) -> tuple[Org, Person]:
    now = clock.now()
    invitation = await session.scalar(
        select(OrgInvitation).where(OrgInvitation.token_hash == hash_invitation_token(data.token))
    )
    invalid = InvalidInvitation("The invitation is not valid: it may be used or expired.")
    if (
        invitation is None
        or invitation.used_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise invalid
    org = await session.get(Org, invitation.org_id)
    person = await session.get(Person, invitation.person_id)
    if org is None or not org.active or person is None or not person.active:
        raise invalid
    if person.org_id != org.id:
        raise invalid
    # Single use, even against two requests at once: only one claims the row.
    claimed = await session.execute(
        update(OrgInvitation)
        .where(
            OrgInvitation.id == invitation.id,
            OrgInvitation.used_at.is_(None),
            OrgInvitation.revoked_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise invalid
    had_password = person.password_hash is not None
    person.password_hash = await hash_secret(data.password)
    person.version += 1
    if had_password:
        # A new password ends the sessions of the old one (as when an admin sets one).
        await revoke_person_tokens(session, person.id, clock)
        person.access_version = (person.access_version or 0) + 1
    await session.flush()
    return org, person


def invitation_link(request: Request, settings: Settings, token: str) -> str:
    base = settings.invitation_url or base_url(request, settings.jwt_issuer) + "/invite"
    return f"{base}#token={token}"


def _invitation_out(
    request: Request, settings: Settings, person: Person, token: str, row: OrgInvitation
) -> InvitationOut:
    return InvitationOut(
        person_id=person.id,
        email=person.email,
        url=invitation_link(request, settings, token),
        expires_at=row.expires_at,
    )


# ----------------------------------------------------------------------------- the routes


@router.get(
    "/orgs",
    operation_id="list_orgs",
    summary="Organisations: every one for a platform operator, your own for an admin",
    response_model=Page[OrgOut],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_orgs(
    session: Session,
    principal: OrgReader,
    paging: Paging,
    active: Annotated[
        bool | None, Query(description="Only active (or only suspended) organisations.")
    ] = None,
) -> Page[OrgOut]:
    if not is_operator(principal):
        org = await get_org(session, principal.org_id) if principal.org_id else None
        items = [OrgOut.model_validate(org)] if org and active in (None, org.active) else []
        return Page[OrgOut](items=items, next_cursor=None)
    statement = select(Org)
    if active is not None:
        statement = statement.where(Org.active.is_(active))
    rows, next_cursor = await paginate(session, statement, Org, paging)
    return Page[OrgOut](items=[OrgOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/orgs",
    operation_id="create_org",
    summary="Create an organisation and invite its first admin (platform operators)",
    description="The admin is added to the new organisation with role `admin` and no "
    "password; `invitation.url` is their one-time link to set one (send it to them; it is "
    "shown once). A slug in use is 409.",
    status_code=201,
    response_model=OrgCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_org_route(
    session: Session,
    operator: Operator,
    body: OrgCreate,
    request: Request,
    response: Response,
    clock: ClockDep,
    settings: SettingsDep,
) -> OrgCreated:
    org, person, token, invitation = await create_org(
        session,
        body,
        invited_by=operator.subject,
        clock=clock,
        ttl_seconds=settings.invitation_ttl_seconds,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/identity/v1/orgs/{org.id}"
    return OrgCreated.model_validate(
        {
            **OrgOut.model_validate(org).model_dump(),
            "invitation": _invitation_out(request, settings, person, token, invitation),
        }
    )


@router.get(
    "/orgs/{org_id}",
    operation_id="get_org",
    summary="One organisation (platform operators)",
    response_model=OrgOut,
    responses=problem_responses(401, 403, 404),
)
async def get_org_route(session: Session, operator: Operator, org_id: uuid.UUID) -> OrgOut:
    return OrgOut.model_validate(await get_org(session, org_id))


@router.post(
    "/orgs/{org_id}/suspension",
    operation_id="suspend_org",
    summary="Suspend an organisation (platform operators)",
    description="Its people cannot sign in, its clients get no token, and every token already "
    "issued to them is refused. Nothing is deleted; reactivating restores access.",
    response_model=OrgOut,
    responses=problem_responses(401, 403, 404),
)
async def suspend_org(session: Session, operator: Operator, org_id: uuid.UUID) -> OrgOut:
    return OrgOut.model_validate(await set_org_active(session, org_id, False))


@router.delete(
    "/orgs/{org_id}/suspension",
    operation_id="reactivate_org",
    summary="Reactivate a suspended organisation (platform operators)",
    response_model=OrgOut,
    responses=problem_responses(401, 403, 404),
)
async def reactivate_org(session: Session, operator: Operator, org_id: uuid.UUID) -> OrgOut:
    return OrgOut.model_validate(await set_org_active(session, org_id, True))


@router.post(
    "/orgs/{org_id}/invitations",
    operation_id="invite_org_admin",
    summary="Invite an admin of an organisation by a one-time link (platform operators)",
    description="For a first admin whose link expired, or a new one: the person (added with "
    "role `admin` when new) gets a new link; links issued to them before stop working.",
    status_code=201,
    response_model=InvitationOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def invite_org_admin(
    session: Session,
    operator: Operator,
    org_id: uuid.UUID,
    body: AdminInvite,
    request: Request,
    response: Response,
    clock: ClockDep,
    settings: SettingsDep,
) -> InvitationOut:
    org = await get_org(session, org_id)
    person, token, invitation = await invite_admin(
        session,
        org,
        body,
        invited_by=operator.subject,
        clock=clock,
        ttl_seconds=settings.invitation_ttl_seconds,
    )
    response.headers["Cache-Control"] = "no-store"
    return _invitation_out(request, settings, person, token, invitation)


@router.post(
    "/invitations/accept",
    operation_id="accept_invitation",
    summary="Accept an invitation: set your password with the link's token",
    description="Anyone holding the token (it is the credential). It works once and expires; "
    "then sign in at `POST /auth/token` with `org` set to the returned slug.",
    response_model=InvitationAccepted,
    responses=problem_responses(400, 422),
    # No token: the invitation's token is the credential (public by design, said so).
    openapi_extra={"security": [{}]},
)
async def accept_invitation_route(
    session: Session, body: InvitationAccept, response: Response, clock: ClockDep
) -> InvitationAccepted:
    org, person = await accept_invitation(session, body, clock=clock)
    response.headers["Cache-Control"] = "no-store"
    return InvitationAccepted(org=org.slug, email=person.email, person_id=person.id)


# ----------------------------------------------------------------------------- the link's page
#
# Where `invitation.url` leads by default: a page that reads the token from the fragment
# (never sent to a server, so never in a log), forgets it from the address bar, and posts it
# with the new password to `accept_invitation`. Its CSP (edge/security.py) allows only its
# own script and calls to this origin.

INVITE_PAGE_PATH = "/invite"
INVITE_SCRIPT_PATH = "/invite.js"

INVITE_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Set your password · Upstander</title>
<script src="/invite.js" defer></script>
</head>
<body>
<main>
<h1>Set your password</h1>
<p id="status" role="status">You were invited to administer an organisation on Upstander.</p>
<form id="accept" method="post" action="#">
<label for="password">New password (8 characters or more)</label>
<input id="password" name="password" type="password" minlength="8" maxlength="256"
 autocomplete="new-password" required>
<button type="submit">Set password</button>
</form>
<noscript>This page needs JavaScript to read the link. Or post the token after
<code>#token=</code> with your password to <code>/identity/v1/invitations/accept</code>.</noscript>
</main>
</body>
</html>
"""

INVITE_SCRIPT = """"use strict";
(function () {
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) { history.replaceState(null, "", location.pathname); }
  var form = document.getElementById("accept");
  var status = document.getElementById("status");
  if (!token) {
    status.textContent = "This link has no invitation in it.";
    form.hidden = true;
    return;
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var password = document.getElementById("password").value;
    fetch("/identity/v1/invitations/accept", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({token: token, password: password})
    }).then(function (response) {
      return response.json().then(function (body) { return [response.ok, body]; });
    }).then(function (result) {
      if (result[0]) {
        form.hidden = true;
        status.textContent = "Done. Sign in as " + result[1].email + " to organisation " +
          result[1].org + ".";
      } else {
        status.textContent = result[1].detail || "The invitation is not valid.";
      }
    }).catch(function () { status.textContent = "Something went wrong; try again."; });
  });
})();
"""

pages = APIRouter(include_in_schema=False)


@pages.get(INVITE_PAGE_PATH)
async def invite_page() -> HTMLResponse:
    return HTMLResponse(INVITE_PAGE, headers={"Cache-Control": "no-store"})


@pages.get(INVITE_SCRIPT_PATH)
async def invite_script() -> Response:
    return Response(
        INVITE_SCRIPT,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )
