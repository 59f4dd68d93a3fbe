"""Statistics of an organisation's cases, safe to share: any count below `MIN_COUNT` (5),
and any figure derived from fewer than 5 cases (a median, a rate), is suppressed (`value`
null, `suppressed` true), so no one can be singled out.

- Counts by category, by status and by month opened (`created_at`, UTC) of the cases opened
  in [`from`, `to`); deleted cases (tombstones) are left out.
- Within a breakdown, when exactly one cell is suppressed, the next smallest is suppressed
  too (secondary suppression), so the hidden one cannot be worked out from the total.
- Median days to acknowledge (received → acknowledged) over acknowledged cases, and to close
  (received → closed, referred or dismissed) over finished ones.
- Deadlines met: acknowledged by `acknowledge_by`, feedback sent by `feedback_by`, over the
  cases whose outcome is known (met, or the deadline has passed). The rate is suppressed
  when its base is below 5 or the count met is suppressed (rate × base would reveal it).
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.models import Case, CaseStatus

MIN_COUNT = 5
DAY_SECONDS = 86_400.0


@dataclass
class Figure:
    value: float | int | None
    suppressed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "suppressed": self.suppressed}


def count(value: int) -> Figure:
    return Figure(None, True) if value < MIN_COUNT else Figure(value, False)


def breakdown(counts: Counter[str], key: str) -> list[dict[str, Any]]:
    """Cells sorted by key, small ones suppressed (with one more when only one is)."""
    cells = {name: count(n) for name, n in counts.items()}
    hidden = [name for name, figure in cells.items() if figure.suppressed]
    if len(hidden) == 1:
        shown = sorted((n, name) for name, n in counts.items() if not cells[name].suppressed)
        if shown:
            cells[shown[0][1]] = Figure(None, True)
    return [
        {key: name, "count": cells[name].value, "suppressed": cells[name].suppressed}
        for name in sorted(cells)
    ]


def median_days(durations: Iterable[float]) -> dict[str, Any]:
    values = list(durations)
    if len(values) < MIN_COUNT:
        return {"value": None, "cases": None, "suppressed": True}
    return {
        "value": round(statistics.median(values) / DAY_SECONDS, 2),
        "cases": len(values),
        "suppressed": False,
    }


def met(hits: int, base: int) -> dict[str, Any]:
    met_count, base_count = count(hits), count(base)
    rate_hidden = base_count.suppressed or met_count.suppressed
    return {
        "met": met_count.value,
        "cases": base_count.value,
        "rate": None if rate_hidden else round(hits / base, 4),
        "suppressed": met_count.suppressed or base_count.suppressed,
    }


async def case_stats(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    # Only columns that are neither content nor identities: nothing is decrypted.
    statement = select(
        Case.categories,
        Case.status,
        Case.created_at,
        Case.received_at,
        Case.acknowledge_by,
        Case.acknowledged_at,
        Case.feedback_by,
        Case.feedback_sent_at,
        Case.closed_at,
    ).where(Case.org_id == org_id, Case.status != CaseStatus.DELETED)
    if since is not None:
        statement = statement.where(Case.created_at >= since)
    if until is not None:
        statement = statement.where(Case.created_at < until)
    rows = (await session.execute(statement)).all()

    categories: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    months: Counter[str] = Counter()
    to_acknowledge: list[float] = []
    to_close: list[float] = []
    ack_hits = ack_base = feedback_hits = feedback_base = 0
    for row in rows:
        categories.update(set(row.categories or []))
        statuses[CaseStatus(row.status).value] += 1
        months[row.created_at.strftime("%Y-%m")] += 1
        if row.acknowledged_at is not None:
            to_acknowledge.append((row.acknowledged_at - row.received_at).total_seconds())
        if row.closed_at is not None:
            to_close.append((row.closed_at - row.received_at).total_seconds())
        if row.acknowledged_at is not None or row.acknowledge_by <= now:
            ack_base += 1
            ack_hits += int(
                row.acknowledged_at is not None and row.acknowledged_at <= row.acknowledge_by
            )
        if row.feedback_sent_at is not None or row.feedback_by <= now:
            feedback_base += 1
            feedback_hits += int(
                row.feedback_sent_at is not None and row.feedback_sent_at <= row.feedback_by
            )
    return {
        "from": since,
        "to": until,
        "min_count": MIN_COUNT,
        "total": count(len(rows)).as_dict(),
        "by_category": breakdown(categories, "category"),
        "by_status": breakdown(statuses, "status"),
        "by_month": breakdown(months, "month"),
        "median_days_to_acknowledge": median_days(to_acknowledge),
        "median_days_to_close": median_days(to_close),
        "acknowledged_on_time": met(ack_hits, ack_base),
        "feedback_on_time": met(feedback_hits, feedback_base),
    }
