"""Who may see what in the training service: shared by every domain's routes and services."""

from __future__ import annotations

import uuid

from fastapi import Request

from upstander.kit.auth import Principal, PrincipalKind, Role
from upstander.kit.clock import Clock
from upstander.kit.errors import Forbidden, NotFound, ProblemError
from upstander.kit.scopes import Scope

# Roles that manage training records for the whole organisation.
MANAGERS = (Role.TRAINER, Role.ADMIN)
# Roles that read every record of the organisation (auditors read, never write).
READERS = (Role.TRAINER, Role.ADMIN, Role.AUDITOR)


def org_of(principal: Principal) -> uuid.UUID:
    """The caller's organisation; `staff_or_client` guarantees one."""
    if principal.org_id is None:
        raise NotFound("No such resource.")
    return principal.org_id


def reads_everything(principal: Principal) -> bool:
    """A reader by role; an API client by scope (clients are granted scopes, not roles)."""
    if principal.kind == PrincipalKind.CLIENT:
        return principal.has_scope(Scope.TRAINING_READ)
    return principal.has_role(*READERS)


def manages(principal: Principal) -> bool:
    if principal.kind == PrincipalKind.CLIENT:
        return principal.has_scope(Scope.TRAINING_WRITE)
    return principal.has_role(*MANAGERS)


def person_of(principal: Principal) -> uuid.UUID:
    """The calling person; API clients act for nobody."""
    if principal.kind != PrincipalKind.STAFF or principal.person_id is None:
        raise Forbidden("Only a person can do this for themself.")
    return principal.person_id


def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


class InvalidReference(ProblemError):
    """A request names something that does not exist in the caller's org (422, field errors)."""

    status, slug, title = 422, "validation-error", "Validation error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, errors=[{"field": field, "message": message}])
