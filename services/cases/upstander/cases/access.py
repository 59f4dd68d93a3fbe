"""Who may do what on a case, and the typed dependencies every case route goes through.

A case route reads::

    @router.post("/cases/{case_id}/notes", ...)
    async def create_note(case: LockedCase, body: NoteIn, ctx: CaseCtx) -> NoteOut:
        note = await service.add_note(ctx.session, case, ...)
        await ctx.audit("note.create", case, detail={"note_id": str(note.id)})

- `CaseCtx` is the request's plumbing in one typed object: session, principal, vault, event
  bus, clock and the request's `now`, plus `audit()` (the hash-chained trail).
- `VisibleCase` / `LockedCase` is the one door to a case: the handler roles, then the
  per-case visibility rules of `cases.service.visible_case` (involved, excluded, chain and
  recused people get 404, as does another organisation). `LockedCase` locks the row.
- Routes whose roles differ from the handlers' take the same pair from a narrower door built
  from a role tuple of `roles.py`: `AssignerCtx` / `AssignerLockedCase`, `SharerCtx` /
  `SharerVisibleCase`, `AdminCtx` / `AdminLockedCase`; organisation-wide routes take
  `AdminCtx`, `StatsCtx` or `AuditorCtx`; the reporter's routes `ReporterCtx` / `ReporterCase`.
- A route with a second id in its path (`/cases/{case_id}/actions/{action_id}`) also declares
  `case_id: uuid.UUID` first, unused: FastAPI documents a route's own parameters before its
  dependencies', and generated clients take path ids positionally in that order.
- Routes built with `case_router()` audit refusals: a 403, a 404 on a case that exists in the
  caller's organisation (hidden from them), a 409 or 412 on a case becomes a `case.refused`
  entry written in its own transaction (the request's own work is rolled back). Refusal
  entries hold the method, the route and the status, never content.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import record
from upstander.cases.cases.service import NO_SUCH_CASE, reporter_case, visible_case
from upstander.cases.models import Case
from upstander.cases.roles import (
    ADMINS,
    ASSIGNERS,
    AUDITORS,
    HANDLERS,
    SHARERS,
    STATS_READERS,
)
from upstander.kit.auth import Principal, PrincipalKind, reporter, staff_or_client
from upstander.kit.clock import Clock
from upstander.kit.crypto import Vault
from upstander.kit.db import CommittingRoute, get_session
from upstander.kit.errors import Forbidden, NotFound, ProblemError, problem_responses
from upstander.kit.events import EventBus

log = logging.getLogger("upstander.cases.access")

# Statuses of a refused action on a case that the audit trail records.
AUDITED_REFUSALS = frozenset({403, 404, 409, 412})


# ----------------------------------------------------------------------------- context


@dataclass
class CaseContext:
    """The request's plumbing for case routes (read `now` once: one request, one time)."""

    request: Request
    session: AsyncSession
    principal: Principal
    vault: Vault
    events: EventBus
    clock: Clock
    now: datetime

    async def audit(
        self,
        action: str,
        case: Case | uuid.UUID | None = None,
        *,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append to the org's audit trail in the request's transaction (identifiers only)."""
        case_id = case.id if isinstance(case, Case) else case
        await record(
            self.session, self.principal, action, at=self.now, case_id=case_id, detail=detail
        )

    @property
    def org_id(self) -> uuid.UUID:
        """The caller's organisation (every caller let in by these dependencies has one)."""
        assert self.principal.org_id is not None
        return self.principal.org_id


def _context(request: Request, principal: Principal, session: AsyncSession) -> CaseContext:
    state = request.app.state
    return CaseContext(
        request=request,
        session=session,
        principal=principal,
        vault=state.vault,
        events=state.events,
        clock=state.clock,
        now=state.clock.now(),
    )


def case_context(*roles: str) -> Any:
    """`Depends(...)` giving the `CaseContext` of a staff member or API client holding one of
    `roles` (403 otherwise). Build one per role tuple of `roles.py`, once, at import."""

    async def dependency(
        request: Request,
        principal: Principal = Depends(staff_or_client),
        session: AsyncSession = Depends(get_session),
    ) -> CaseContext:
        if principal.kind != PrincipalKind.CLIENT and not principal.has_role(*roles):
            # Someone who handles no case at all, asking for one by id: the same 404 as for a
            # case hidden from them or one that does not exist (no existence signal either way).
            if "case_id" in request.path_params and not principal.has_role(*HANDLERS):
                raise NotFound(NO_SUCH_CASE)
            raise Forbidden("Your role does not allow this.")
        return _context(request, principal, session)

    return Depends(dependency)


def case_dependency(context: Any, *, for_update: bool) -> Any:
    """`Depends(...)` giving the path's `{case_id}` case through `visible_case`, for the
    callers `context` (a `case_context(...)`) lets in. Sharing the context's dependency means
    one role check, always made before the case is looked up (a 403 comes before a 404)."""

    async def dependency(case_id: uuid.UUID, ctx: CaseContext = context) -> Case:
        return await visible_case(ctx.session, ctx.principal, case_id, for_update=for_update)

    return Depends(dependency)


# Case handlers (`roles.HANDLERS`): the context, a case they may see (404 otherwise), and the
# same with its row locked for a change.
_HANDLER_CONTEXT = case_context(*HANDLERS)
CaseCtx = Annotated[CaseContext, _HANDLER_CONTEXT]
VisibleCase = Annotated[Case, case_dependency(_HANDLER_CONTEXT, for_update=False)]
LockedCase = Annotated[Case, case_dependency(_HANDLER_CONTEXT, for_update=True)]

# Narrower doors, one per role tuple that differs from the handlers'. Use the context and the
# case of the same door in a route (mixing doors would check two role sets).
_ASSIGNER_CONTEXT = case_context(*ASSIGNERS)
AssignerCtx = Annotated[CaseContext, _ASSIGNER_CONTEXT]
AssignerLockedCase = Annotated[Case, case_dependency(_ASSIGNER_CONTEXT, for_update=True)]

_SHARER_CONTEXT = case_context(*SHARERS)
SharerCtx = Annotated[CaseContext, _SHARER_CONTEXT]
SharerVisibleCase = Annotated[Case, case_dependency(_SHARER_CONTEXT, for_update=False)]

_ADMIN_CONTEXT = case_context(*ADMINS)
AdminCtx = Annotated[CaseContext, _ADMIN_CONTEXT]
AdminLockedCase = Annotated[Case, case_dependency(_ADMIN_CONTEXT, for_update=True)]

# Organisation-wide routes (no case in the path).
StatsCtx = Annotated[CaseContext, case_context(*STATS_READERS)]
AuditorCtx = Annotated[CaseContext, case_context(*AUDITORS)]


async def _reporter_context(
    request: Request,
    principal: Principal = Depends(reporter),
    session: AsyncSession = Depends(get_session),
) -> CaseContext:
    return _context(request, principal, session)


# The reporter (a token from `POST /auth/receipt`, scoped to one report) and the case their
# report opened (404 while there is none). Reporter routes are not audited.
ReporterCtx = Annotated[CaseContext, Depends(_reporter_context)]


async def _reporter_case(ctx: ReporterCtx) -> Case:
    return await reporter_case(ctx.session, ctx.principal)


ReporterCase = Annotated[Case, Depends(_reporter_case)]


# ----------------------------------------------------------------------------- refusals


async def record_refusal(request: Request, status: int) -> None:
    """Write `case.refused` for the case the request named, in a transaction of its own, if
    that case exists in the caller's organisation. Never raises (the refusal is the answer)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    try:
        case_id = uuid.UUID(str(request.path_params["case_id"]))
    except (KeyError, ValueError):
        return
    if principal is None or principal.org_id is None:
        return
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else "?"
    try:
        async with request.app.state.sessionmaker() as session, session.begin():
            exists = await session.scalar(
                select(Case.id).where(Case.id == case_id, Case.org_id == principal.org_id)
            )
            if exists is None:
                return  # an unknown id or another org's case: nothing to attach it to
            await record(
                session,
                principal,
                "case.refused",
                at=request.app.state.clock.now(),
                case_id=case_id,
                detail={"method": request.method, "route": path, "status": status},
            )
    except Exception as error:  # the audit store failing must not turn a 404 into a 500
        log.warning("could not record a refusal: %s", type(error).__name__)


async def _roll_back(request: Request) -> None:
    """End the refused request's transaction now: its work is void anyway, and it may hold the
    case row (`FOR UPDATE`), the audit head or SQLite's write lock, which the refusal's own
    transaction would wait on: on PostgreSQL until a lock timeout (the holder is this very
    request, idle until it ends), on SQLite for the busy timeout, and the entry is lost."""
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    if session is None:
        return
    try:
        await session.rollback()
    except Exception as error:  # the connection may be gone; the refusal is still the answer
        log.warning("could not roll back a refused request: %s", type(error).__name__)


class AuditedCaseRoute(CommittingRoute):
    """`CommittingRoute` that records refused actions on a case (see the module docstring)."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def auditing_handler(request: Request) -> Any:
            try:
                return await handler(request)
            except ProblemError as error:
                if error.status in AUDITED_REFUSALS:
                    await _roll_back(request)
                    await record_refusal(request, error.status)
                raise

        return auditing_handler


def case_router(tags: list[str]) -> APIRouter:
    """A router for routes under `/cases/v1` that commit before responding and audit
    refusals."""
    return APIRouter(
        prefix="/cases/v1",
        tags=list[str | Enum](tags),
        route_class=AuditedCaseRoute,
        responses=problem_responses(401, 403, 404, 422, 500, 503),
    )
