"""Preferences: reading and replacing a person's own, the mandatory notices no one may switch
off, and when quiet hours let a non-urgent email go out."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import ProblemError
from upstander.notify.models import Preference

KINDS = ("case", "training", "policy")
ALL_CHANNELS = ("inbox", "email")

# role → kind → channels that role always receives, whatever its preferences say: the people
# who handle cases must see new cases and reporters' messages in the app.
MANDATORY: dict[str, dict[str, tuple[str, ...]]] = {
    "case_manager": {"case": ("inbox",)},
    "reviewer": {"case": ("inbox",)},
    "investigator": {"case": ("inbox",)},
}


class MandatoryNotice(ProblemError):
    status, slug, title = 422, "mandatory-notification", "Mandatory notification"


class InvalidTimezone(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"


def kind_of(event_type: str) -> str | None:
    """`upstander.case.opened` → `case`; None for notices outside the preference kinds."""
    parts = event_type.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in KINDS else None


def mandatory_for(roles: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for role in roles:
        for kind, channels in MANDATORY.get(role, {}).items():
            found.setdefault(kind, set()).update(channels)
    return {kind: sorted(channels) for kind, channels in sorted(found.items())}


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Effective:
    """A person's preferences with defaults filled in (every kind, every channel on)."""

    channels: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {kind: ALL_CHANNELS for kind in KINDS}
    )
    quiet_start: time | None = None
    quiet_end: time | None = None
    timezone: str = "UTC"
    language: str | None = None

    @classmethod
    def of(cls, row: Preference | None) -> Effective:
        if row is None:
            return cls()
        channels = {kind: tuple(row.channels.get(kind, ALL_CHANNELS)) for kind in KINDS}
        start = time.fromisoformat(row.quiet_start) if row.quiet_start else None
        end = time.fromisoformat(row.quiet_end) if row.quiet_end else None
        return cls(channels, start, end, row.timezone or "UTC", row.language)

    def wants(self, kind: str | None, channel: str) -> bool:
        return kind is None or channel in self.channels.get(kind, ALL_CHANNELS)

    def quiet_until(self, at: datetime) -> datetime | None:
        """When the quiet hours around `at` end (UTC), or None if `at` is not in them."""
        start, end = self.quiet_start, self.quiet_end
        if start is None or end is None or start == end:
            return None
        tz = zone(self.timezone)
        local = at.astimezone(tz)
        now = local.time().replace(tzinfo=None)
        day = local.date()
        if start < end:
            if not start <= now < end:
                return None
        elif now >= start:
            day += timedelta(days=1)
        elif now >= end:
            return None
        return datetime.combine(day, end, tzinfo=tz).astimezone(at.tzinfo)

    def next_local(self, at: datetime, hour: int) -> datetime:
        """The first `hour`:00 in the person's time zone strictly after `at`."""
        tz = zone(self.timezone)
        local = at.astimezone(tz)
        target = datetime.combine(local.date(), time(hour), tzinfo=tz)
        if target <= local:
            target = datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=tz)
        return target.astimezone(at.tzinfo)


async def get_row(session: AsyncSession, person_id: uuid.UUID) -> Preference | None:
    return await session.scalar(select(Preference).where(Preference.person_id == person_id))


async def effective_for(
    session: AsyncSession, org_id: uuid.UUID, person_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Effective]:
    """Preferences of many people in one query (people without a row are left out)."""
    if not person_ids:
        return {}
    rows = await session.scalars(select(Preference).where(Preference.org_id == org_id))
    wanted = set(person_ids)
    return {row.person_id: Effective.of(row) for row in rows if row.person_id in wanted}


async def put_preferences(
    session: AsyncSession,
    org_id: uuid.UUID,
    person_id: uuid.UUID,
    roles: Iterable[str],
    *,
    channels: dict[str, list[str]],
    quiet_start: time | None,
    quiet_end: time | None,
    timezone: str,
    language: str | None,
    now: datetime,
) -> Preference:
    """Replace the person's preferences; refuses (422) to switch off a mandatory notice."""
    missing = [
        {"kind": kind, "channel": channel}
        for kind, required in mandatory_for(roles).items()
        for channel in required
        if channel not in channels.get(kind, ALL_CHANNELS)
    ]
    if missing:
        names = ", ".join(f"{m['kind']} ({m['channel']})" for m in missing)
        raise MandatoryNotice(
            f"Your role must receive these notices; they cannot be switched off: {names}.",
            mandatory=missing,
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezone(
            "Unknown time zone.",
            errors=[{"field": "body.quiet_hours.timezone", "message": "Unknown IANA time zone."}],
        ) from None
    row = await get_row(session, person_id)
    if row is None:
        row = Preference(org_id=org_id, person_id=person_id, version=0, created_at=now)
        session.add(row)
    row.channels = {kind: list(dict.fromkeys(channels.get(kind, ALL_CHANNELS))) for kind in KINDS}
    row.quiet_start = quiet_start.strftime("%H:%M") if quiet_start else None
    row.quiet_end = quiet_end.strftime("%H:%M") if quiet_end else None
    row.timezone = timezone
    row.language = language
    row.version += 1
    row.updated_at = now
    await session.flush()
    return row
