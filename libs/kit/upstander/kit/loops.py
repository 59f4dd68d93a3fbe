"""The one background loop every service uses: the outbox relay, the event consumers and
pruning, the schedulers and workers.

A `PeriodicTask` runs one async step again and again: at once while the step reports more
work, otherwise after its interval (with jitter, so replicas started together do not poll in
step), or sooner when something `wake()`s it, for example a transaction that wrote work for
it committing (`wake_after_commit`). A failing step is logged by its exception's type and
place only (a message may quote report content or SQL parameters) and tried again after the
interval; `stop()` cancels it cleanly. Steps must be safe with N replicas running the same
loop: they claim work with leases or `FOR UPDATE SKIP LOCKED`, or are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("upstander.loops")

Step = Callable[[], Awaitable[Any]]


def failure_summary(error: BaseException) -> dict[str, str]:
    """What a log line may say about a failure: its type and the innermost place it was
    raised, never its message."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return {"error": type(error).__name__, "where": where}


# The longest wait after repeated failures, in intervals.
MAX_BACKOFF_INTERVALS = 30


class PeriodicTask:
    """A named loop around `step`. The step's truthy result means "there is more": the loop
    runs it again at once (up to `burst` times in a row, then yields to the interval)."""

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        interval: float,
        jitter: float = 0.1,
        burst: int = 1000,
        initial_delay: float = 0.0,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self.name = name
        self.step = step
        self.interval = interval
        self.jitter = jitter
        self.burst = burst
        # Before the first step (a start-up's work settles first), unless woken sooner.
        self.initial_delay = initial_delay
        self.failures = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        self._wake.set()

    def _on_commit(self, _session: Session) -> None:
        self._wake.set()

    def wake_after_commit(self, session: Session) -> None:
        """Wake the loop when `session` commits. Registered once per session (a `once=True`
        wrapper would defeat the `contains` check and pile up a listener per call)."""
        if not event.contains(session, "after_commit", self._on_commit):
            event.listen(session, "after_commit", self._on_commit)

    def pause(self) -> float:
        """The next wait: the interval, give or take `jitter` of it; after failures in a row
        (a database or broker outage) it doubles each time, up to 30 intervals, so a loop
        that cannot work does not hammer what is down."""
        interval = self.interval * min(2 ** max(self.failures - 1, 0), MAX_BACKOFF_INTERVALS)
        spread = interval * self.jitter
        return max(0.0, interval + random.uniform(-spread, spread))  # noqa: S311

    async def _run(self) -> None:
        if self.initial_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.initial_delay)
        while True:
            self._wake.clear()
            try:
                for _ in range(self.burst):
                    if not await self.step():
                        break
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.failures += 1
                log.warning(
                    "background step failed",
                    extra={"task": self.name, "failures": self.failures, **failure_summary(error)},
                )
            if self._wake.is_set():
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.pause())
