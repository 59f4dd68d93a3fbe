"""Legal deadlines: 7 days to acknowledge, 3 calendar months (clamped) to give feedback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from upstander.cases.cases.deadlines import acknowledge_by, add_months, feedback_by


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 30) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_acknowledge_by_is_seven_days_after_receipt() -> None:
    assert acknowledge_by(at(2026, 11, 24)) == at(2026, 12, 1)


def test_feedback_by_is_three_months_after_the_acknowledgment_deadline() -> None:
    # Received 24 Nov → acknowledge by 1 Dec → feedback by 1 Mar.
    assert feedback_by(at(2026, 11, 24)) == at(2027, 3, 1)


def test_feedback_by_counts_from_an_acknowledgment_actually_sent() -> None:
    assert feedback_by(at(2026, 11, 24), acknowledged_at=at(2026, 11, 25, 14, 0)) == at(
        2027, 2, 25, 14, 0
    )


@pytest.mark.parametrize(
    ("received", "expected_feedback"),
    [
        (at(2026, 11, 23), at(2027, 2, 28)),  # ack 30 Nov → 30 Feb clamps to 28 Feb
        (at(2027, 11, 23), at(2028, 2, 29)),  # leap year: clamps to 29 Feb
        (at(2026, 3, 24), at(2026, 6, 30)),  # ack 31 Mar → 31 Jun clamps to 30 Jun
        (at(2026, 10, 24), at(2027, 1, 31)),  # ack 31 Oct → 31 Jan, no clamp
        (at(2026, 12, 28), at(2027, 4, 4)),  # ack 4 Jan crosses the year first
    ],
)
def test_feedback_by_clamps_to_the_end_of_a_shorter_month(
    received: datetime, expected_feedback: datetime
) -> None:
    assert feedback_by(received) == expected_feedback


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (at(2026, 1, 31), 1, at(2026, 2, 28)),
        (at(2028, 1, 31), 1, at(2028, 2, 29)),
        (at(2026, 1, 31), 3, at(2026, 4, 30)),
        (at(2026, 11, 15), 3, at(2027, 2, 15)),
        (at(2026, 12, 31), 12, at(2027, 12, 31)),
        (at(2026, 3, 31), -1, at(2026, 2, 28)),
    ],
)
def test_add_months_uses_calendar_months(start: datetime, months: int, expected: datetime) -> None:
    assert add_months(start, months) == expected


def test_add_months_keeps_the_time_and_timezone() -> None:
    result = add_months(datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC), 1)

    assert result == datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC)
    assert result.tzinfo is UTC
