"""Legal deadlines of a report (EU Directive 2019/1937, Art. 9), as pure functions.

- acknowledge receipt within 7 days: `acknowledge_by = received_at + 7 days`;
- feedback at most 3 months from the acknowledgment or, where none was sent, from 7 days
  after receipt: `feedback_by = (acknowledged_at or received_at + 7 days) + 3 months`.

Months are calendar months; a day that the target month lacks is clamped to its last day
(30 November + 3 months = 28 February, or 29 in a leap year).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

ACKNOWLEDGE_WITHIN = timedelta(days=7)
FEEDBACK_WITHIN_MONTHS = 3


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus whole calendar months, keeping the time of day and clamping the day."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


ACKNOWLEDGE_DAYS = 7


def acknowledge_by(received_at: datetime, days: int = ACKNOWLEDGE_DAYS) -> datetime:
    """`days` (an organisation may shorten the legal 7, never lengthen it) after receipt."""
    return received_at + timedelta(days=min(days, ACKNOWLEDGE_DAYS))


def feedback_by(
    received_at: datetime,
    acknowledged_at: datetime | None = None,
    *,
    acknowledge_days: int = ACKNOWLEDGE_DAYS,
    months: int = FEEDBACK_WITHIN_MONTHS,
) -> datetime:
    """`months` (at most 3) from the acknowledgment or, where none was sent, from the
    acknowledgment deadline. An org that shortened that deadline counts from its own."""
    start = (
        acknowledged_at
        if acknowledged_at is not None
        else acknowledge_by(received_at, acknowledge_days)
    )
    return add_months(start, min(months, FEEDBACK_WITHIN_MONTHS))
