"""An injectable clock, so tests move time instead of sleeping; and `coarse()`, the one way
to blur a moment that could tie an anonymous reporter to when they acted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Reporter modes whose actions keep only coarse times (see `for_reporter`).
COARSE_REPORTER_MODES = frozenset({"anonymous", "confidential"})


class Clock:
    """The real clock: timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, at: datetime | None = None) -> None:
        self._now = at or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, at: datetime) -> None:
        self._now = at


def utcnow() -> datetime:
    return datetime.now(UTC)


def coarse(moment: datetime, to: timedelta = HOUR) -> datetime:
    """`moment` floored to a whole multiple of `to` since the Unix epoch, in UTC
    (09:37:12.345678 → 09:00:00 for the default hour).

    Floor, not round: a legal deadline counted from the floored time falls due sooner, never
    later, which is the reporter's favour. Naive datetimes are refused like everywhere else."""
    if moment.tzinfo is None:
        raise ValueError("coarse() needs a timezone-aware datetime")
    if to <= timedelta(0):
        raise ValueError("coarse() needs a positive step")
    return _EPOCH + ((moment.astimezone(UTC) - _EPOCH) // to) * to


def is_coarse(moment: datetime, to: timedelta = HOUR) -> bool:
    """True when `moment` is already on a `to` boundary (what `coarse` would leave alone)."""
    return coarse(moment, to) == moment


def for_reporter(moment: datetime, mode: str) -> datetime:
    """The time to store or log for something a reporter did: the hour for an anonymous or
    confidential reporter, the exact moment for an identified one (their name is on it
    anyway). Accepts the mode as a plain string or any `StrEnum` of the services."""
    return coarse(moment) if str(mode) in COARSE_REPORTER_MODES else moment
