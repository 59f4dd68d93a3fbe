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
from upstander.cases.cases.service import visible_case
from upstander.cases.models import Case
from upstander.cases.roles import HANDLERS
from upstander.kit.auth import Principal, require_roles
from upstander.kit.clock import Clock
from upstander.kit.crypto import Vault
from upstander.kit.db import CommittingRoute, get_session
from upstander.kit.errors import ProblemError, problem_responses
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


async def _handler_context(
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> CaseContext:
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


CaseCtx = Annotated[CaseContext, Depends(_handler_context)]


def _case_dependency(*, for_update: bool) -> Any:
    async def dependency(case_id: uuid.UUID, ctx: CaseCtx) -> Case:
        return await visible_case(ctx.session, ctx.principal, case_id, for_update=for_update)

    return Depends(dependency)


# A case the caller may see (404 otherwise), and the same with its row locked for a change.
VisibleCase = Annotated[Case, _case_dependency(for_update=False)]
LockedCase = Annotated[Case, _case_dependency(for_update=True)]


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


class AuditedCaseRoute(CommittingRoute):
    """`CommittingRoute` that records refused actions on a case (see the module docstring)."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def auditing_handler(request: Request) -> Any:
            try:
                return await handler(request)
            except ProblemError as error:
                if error.status in AUDITED_REFUSALS:
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
        responses=problem_responses(401, 403, 404, 422, 500),
    )
