"""The kit's background loop backs off while its step keeps failing (an outage) and returns to
its interval once a step succeeds."""

from __future__ import annotations

import asyncio

from upstander.kit.loops import MAX_BACKOFF_INTERVALS, PeriodicTask


async def _noop() -> bool:
    return False


def test_the_wait_doubles_with_each_failure_in_a_row_up_to_a_ceiling() -> None:
    task = PeriodicTask("test", _noop, interval=2.0, jitter=0.0)
    waits = []
    for failures in range(0, 9):
        task.failures = failures
        waits.append(task.pause())
    assert waits[:6] == [2.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(waits) == 2.0 * MAX_BACKOFF_INTERVALS
    task.failures = 0
    assert task.pause() == 2.0


async def test_a_failing_step_is_retried_later_and_a_success_resets_the_backoff() -> None:
    calls = 0

    async def step() -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionRefusedError("database down")
        return False

    task = PeriodicTask("test", step, interval=0.01, jitter=0.0)
    task.start()
    try:
        for _ in range(200):
            if calls >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await task.stop()
    assert calls >= 3
    assert task.failures == 0
