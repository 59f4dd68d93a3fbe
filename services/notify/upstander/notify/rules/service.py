"""Finding the rule for an event type, and an org's overrides of the defaults."""

from __future__ import annotations

import uuid
from datetime import datetime
from fnmatch import fnmatchcase

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest, NotFound
from upstander.notify.models import NotificationRule
from upstander.notify.rules.defaults import DEFAULT_RULES, NOT_NOTICES, Rule


def _from_row(row: NotificationRule) -> Rule:
    return Rule(
        row.event_type, tuple(row.recipients), tuple(row.channels), row.urgent, source="org"
    )


def _specificity(pattern: str) -> tuple[int, int]:
    """Exact types before patterns; among patterns, the longer literal prefix wins."""
    wildcard = min((pattern.find(c) for c in "*?[" if c in pattern), default=-1)
    return (1, 0) if wildcard < 0 else (0, wildcard)


async def rule_for(session: AsyncSession, org_id: uuid.UUID, event_type: str) -> Rule | None:
    """The org's most specific override matching `event_type`, else the shipped default."""
    rows = await session.scalars(select(NotificationRule).where(NotificationRule.org_id == org_id))
    matching = [r for r in rows if fnmatchcase(event_type, r.event_type)]
    if matching:
        best = max(matching, key=lambda r: (_specificity(r.event_type), r.event_type))
        return _from_row(best)
    return DEFAULT_RULES.get(event_type)


async def list_rules(session: AsyncSession, org_id: uuid.UUID) -> list[Rule]:
    """Every default (overridden or not) and every org pattern, sorted by event type."""
    rows = await session.scalars(select(NotificationRule).where(NotificationRule.org_id == org_id))
    found = dict(DEFAULT_RULES)
    for row in rows:
        found[row.event_type] = _from_row(row)
    return [found[key] for key in sorted(found)]


def _check_type(event_type: str) -> None:
    if event_type.startswith(NOT_NOTICES):
        raise BadRequest(f"{event_type!r}: directory and report events are not notices.")


async def put_rule(
    session: AsyncSession,
    org_id: uuid.UUID,
    event_type: str,
    *,
    recipients: list[str],
    channels: list[str],
    urgent: bool,
    now: datetime,
) -> Rule:
    _check_type(event_type)
    row = await session.scalar(
        select(NotificationRule).where(
            NotificationRule.org_id == org_id, NotificationRule.event_type == event_type
        )
    )
    if row is None:
        row = NotificationRule(org_id=org_id, event_type=event_type, version=0, created_at=now)
        session.add(row)
    row.recipients = list(dict.fromkeys(recipients))
    row.channels = list(dict.fromkeys(channels))
    row.urgent = urgent
    row.version += 1
    row.updated_at = now
    await session.flush()
    return _from_row(row)


async def delete_rule(session: AsyncSession, org_id: uuid.UUID, event_type: str) -> Rule | None:
    """Drop the org's override; returns the default now in force (None for a pattern)."""
    row = await session.scalar(
        select(NotificationRule).where(
            NotificationRule.org_id == org_id, NotificationRule.event_type == event_type
        )
    )
    if row is None:
        raise NotFound("This org has no override for that event type.")
    await session.delete(row)
    await session.flush()
    return DEFAULT_RULES.get(event_type)
