"""Policy logic: documents, published versions and acknowledgments, scoped by org."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.auth import Principal
from upstander.kit.contracts import PolicyAcknowledged, PolicyVersionPublished
from upstander.kit.errors import Conflict, NotFound
from upstander.kit.events import EventBus
from upstander.kit.pagination import PageParams, paginate
from upstander.training.access import org_of, person_of, reads_everything
from upstander.training.compliance.store import refresh_items
from upstander.training.models import Acknowledgment, Policy, PolicyVersion
from upstander.training.policies.schemas import PolicyCreate, VersionCreate


async def create_policy(session: AsyncSession, principal: Principal, data: PolicyCreate) -> Policy:
    policy = Policy(org_id=org_of(principal), title=data.title, summary=data.summary, active=True)
    session.add(policy)
    await session.flush()
    return policy


async def list_policies(
    session: AsyncSession, principal: Principal, params: PageParams
) -> tuple[list[Policy], str | None]:
    statement = select(Policy).where(Policy.org_id == org_of(principal), Policy.active.is_(True))
    return await paginate(session, statement, Policy, params)


async def get_policy(session: AsyncSession, principal: Principal, policy_id: uuid.UUID) -> Policy:
    policy = await session.scalar(
        select(Policy).where(Policy.id == policy_id, Policy.org_id == org_of(principal))
    )
    if policy is None:
        raise NotFound("No such policy.")
    return policy


async def publish_version(
    session: AsyncSession,
    principal: Principal,
    policy_id: uuid.UUID,
    data: VersionCreate,
    *,
    now: datetime,
    events: EventBus,
) -> PolicyVersion:
    """Publish the next version; everyone must acknowledge it within `due_days`."""
    policy = await session.scalar(
        select(Policy)
        .where(Policy.id == policy_id, Policy.org_id == org_of(principal))
        .with_for_update()
    )
    if policy is None:
        raise NotFound("No such policy.")
    number = (policy.current_version or 0) + 1
    version = PolicyVersion(
        org_id=policy.org_id,
        policy_id=policy.id,
        number=number,
        body=data.body,
        changes=data.changes,
        due_days=data.due_days,
        published_at=now,
        published_by=principal.subject[:64],
    )
    session.add(version)
    policy.current_version = number
    await session.flush()
    await refresh_items(session, policy.org_id, policies=[policy.id])
    await events.publish(
        session,
        PolicyVersionPublished.EVENT_TYPE,
        f"policy/{policy.id}",
        PolicyVersionPublished(
            policy_id=policy.id,
            org_id=policy.org_id,
            title=policy.title,
            version=number,
            due_days=data.due_days,
        ).model_dump(mode="json"),
        org_id=policy.org_id,
    )
    return version


async def list_versions(
    session: AsyncSession, principal: Principal, policy_id: uuid.UUID, params: PageParams
) -> tuple[list[PolicyVersion], str | None]:
    policy = await get_policy(session, principal, policy_id)
    statement = select(PolicyVersion).where(
        PolicyVersion.org_id == policy.org_id, PolicyVersion.policy_id == policy.id
    )
    return await paginate(session, statement, PolicyVersion, params)


async def get_version(
    session: AsyncSession, principal: Principal, policy_id: uuid.UUID, number: int
) -> PolicyVersion:
    policy = await get_policy(session, principal, policy_id)
    version = await session.scalar(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.number == number
        )
    )
    if version is None:
        raise NotFound("No such version.")
    return version


async def acknowledge(
    session: AsyncSession,
    principal: Principal,
    policy_id: uuid.UUID,
    number: int,
    *,
    now: datetime,
    events: EventBus | None = None,
) -> tuple[Acknowledgment, bool]:
    """The caller acknowledges the current version; repeating it returns the first one. The
    first time, `upstander.policy.acknowledged` is published with `events` (ids only)."""
    person_id = person_of(principal)
    policy = await get_policy(session, principal, policy_id)
    version = await get_version(session, principal, policy_id, number)
    existing = await session.scalar(
        select(Acknowledgment).where(
            Acknowledgment.version_id == version.id, Acknowledgment.person_id == person_id
        )
    )
    if existing is not None:
        return existing, False
    if version.number != policy.current_version:
        raise Conflict(
            "A newer version replaces this one; acknowledge that instead.",
            current_version=policy.current_version,
        )
    acknowledgment = Acknowledgment(
        org_id=policy.org_id,
        policy_id=policy.id,
        version_id=version.id,
        version_number=version.number,
        person_id=person_id,
        acknowledged_at=now,
    )
    session.add(acknowledgment)
    await session.flush()
    await refresh_items(session, policy.org_id, people=[person_id], policies=[policy.id])
    if events is not None:
        await events.publish(
            session,
            PolicyAcknowledged.EVENT_TYPE,
            f"policy/{policy.id}",
            PolicyAcknowledged(
                acknowledgment_id=acknowledgment.id,
                person_id=person_id,
                policy_id=policy.id,
                version=version.number,
                acknowledged_at=now,
            ).model_dump(mode="json"),
            org_id=policy.org_id,
            at=now,
        )
    return acknowledgment, True


async def list_acknowledgments(
    session: AsyncSession,
    principal: Principal,
    policy_id: uuid.UUID,
    params: PageParams,
    *,
    version: int | None,
) -> tuple[list[Acknowledgment], str | None]:
    policy = await get_policy(session, principal, policy_id)
    statement = select(Acknowledgment).where(
        Acknowledgment.org_id == policy.org_id, Acknowledgment.policy_id == policy.id
    )
    if not reads_everything(principal):
        statement = statement.where(Acknowledgment.person_id == person_of(principal))
    if version is not None:
        statement = statement.where(Acknowledgment.version_number == version)
    return await paginate(session, statement, Acknowledgment, params)
