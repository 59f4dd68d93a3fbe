"""The gateway's own revocation check: its routes (identity, and any other that takes a staff
or client token) read the directory itself, the source of truth, so a deactivation or role
change takes effect there on the very next request, with no event to wait for.

The services apply the same rule to their ledger of the gateway's `upstander.access.changed`
events (upstander.kit.revocation)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.gateway.models import ApiClient, Org, Person
from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.revocation import claimed_version


class DirectoryRevocationCheck:
    """`TokenVerifier.revocation_check` for the gateway: one indexed read per staff or client
    token (the person or client joined with its organisation), no cache."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(self, principal: Principal) -> bool:
        version = claimed_version(principal)
        if version is None:
            return True
        found: tuple[int, bool, uuid.UUID | None, bool] | None
        async with self.sessionmaker() as session:
            if principal.kind == PrincipalKind.STAFF:
                person = await session.execute(
                    select(Person.access_version, Person.active, Person.org_id, Org.active)
                    .join(Org, Org.id == Person.org_id)
                    .where(Person.id == principal.person_id)
                )
                found = person.one_or_none()
            elif principal.kind == PrincipalKind.CLIENT:
                client = await session.execute(
                    select(ApiClient.access_version, ApiClient.active, ApiClient.org_id, Org.active)
                    .join(Org, Org.id == ApiClient.org_id)
                    .where(ApiClient.client_id == principal.subject)
                )
                found = client.one_or_none()
            else:
                return False
        if found is None:
            # No such person or client: nothing records a change, as for a subject missing
            # from a service's ledger (people and clients are deactivated, never deleted).
            return False
        access_version, active, org_id, org_active = found
        return (
            not active
            or not org_active
            or org_id != principal.org_id
            or version < (access_version or 0)
        )
