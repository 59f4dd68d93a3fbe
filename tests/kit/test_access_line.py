"""The access line written straight to the kit's JSON stream is the line the logging path
writes for the same request (the fallback when anything else listens, a test's capture say)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest

from upstander.kit.observability import (
    ACCESS_BUFFER_CHARS,
    ACCESS_FLUSH_SECONDS,
    AccessLog,
    JsonFormatter,
    Metrics,
    _json_stream_of,
    flush_access_lines,
    request_id_var,
)


@contextmanager
def only_the_kit_stream() -> Iterator[io.StringIO]:
    """The root logger as `configure_logging` leaves it (pytest's own capture set aside)."""
    root = logging.root
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("kit-test"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])


class _Route:
    path = "/training/v1/courses"


@pytest.mark.parametrize("coarse_line", [False, True])
def test_the_direct_line_equals_the_logged_line(coarse_line: bool) -> None:
    access = AccessLog(Metrics("kit-test"))
    scope = {"method": "GET", "route": _Route()}
    token = request_id_var.set("a" * 32)
    try:
        with only_the_kit_stream() as buffer:
            assert _json_stream_of(access.log) is not None
            access._record(scope, 200, 0.0, coarse_line)  # straight to the stream
            access.log.addFilter(lambda record: True)  # another listener: the logging path
            try:
                assert _json_stream_of(access.log) is None
                access._record(scope, 200, 0.0, coarse_line)
            finally:
                access.log.filters.clear()
    finally:
        request_id_var.reset(token)
    direct, logged = (json.loads(line) for line in buffer.getvalue().splitlines())
    for line in (direct, logged):
        moment = datetime.fromisoformat(line.pop("time"))
        if coarse_line:
            assert (moment.minute, moment.second, moment.microsecond) == (0, 0, 0)
        assert isinstance(line.pop("duration_ms"), float)
    assert direct == logged
    assert direct == {
        "level": "info",
        "service": "kit-test",
        "logger": "upstander.access",
        "message": "request",
        "request_id": None if coarse_line else "a" * 32,
        "method": "GET",
        "route": "/training/v1/courses",
        "status": 200,
    }


def test_a_handler_on_a_parent_logger_gets_the_record() -> None:
    access = AccessLog(Metrics("kit-test"))
    parent = logging.getLogger("upstander")
    with only_the_kit_stream():
        assert _json_stream_of(access.log) is not None
        extra = logging.NullHandler()
        parent.addHandler(extra)
        try:
            assert _json_stream_of(access.log) is None
        finally:
            parent.removeHandler(extra)


class _CountingStream(io.StringIO):
    """A stream that counts its writes (each a system call on a real stderr)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_lines_written_while_serving_go_out_together_soon_after() -> None:
    access = AccessLog(Metrics("kit-test"))
    scope = {"method": "GET", "route": _Route()}
    stream = _CountingStream()
    with only_the_kit_stream() as unused:
        handler = logging.root.handlers[0]
        handler.setStream(stream)  # type: ignore[attr-defined]
        assert unused.getvalue() == ""
        for _ in range(50):
            access._record(scope, 200, 0.0, False)
        assert stream.getvalue() == ""  # waiting for the batch
        await asyncio.sleep(ACCESS_FLUSH_SECONDS * 3)
        assert stream.writes == 1
        assert len(stream.getvalue().splitlines()) == 50
        # A full buffer is written at once; flush_access_lines writes what waits.
        while stream.writes == 1:
            access._record(scope, 200, 0.0, False)
        assert len(stream.getvalue()) >= ACCESS_BUFFER_CHARS
        access._record(scope, 200, 0.0, False)
        flush_access_lines()
        lines = stream.getvalue().splitlines()
        assert all(json.loads(line)["route"] == "/training/v1/courses" for line in lines)


def test_a_normal_exit_writes_the_waiting_lines() -> None:
    script = textwrap.dedent(
        """
        import asyncio, logging, os
        from upstander.kit.observability import AccessLog, Metrics, configure_logging

        class Route:
            path = "/x"

        async def main():
            configure_logging("kit-test")
            access = AccessLog(Metrics("kit-test"))
            access._record({"method": "GET", "route": Route()}, 204, 0.0, False)

        asyncio.run(main())  # returns before the batch's timer
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [json.loads(x) for x in done.stderr.splitlines() if '"route"' in x]
    assert (line["route"], line["status"]) == ("/x", 204)


def test_a_batch_whose_loop_ended_goes_out_with_the_next_loops() -> None:
    """A loop that ends before its batch's timer fires (a test's, a worker's) does not leave the
    lines waiting for good: the next loop's first line starts a batch of its own."""
    access = AccessLog(Metrics("kit-test"))
    scope = {"method": "GET", "route": _Route()}
    stream = _CountingStream()

    async def one_line() -> None:
        access._record(scope, 200, 0.0, False)

    async def one_line_then_wait() -> None:
        access._record(scope, 200, 0.0, False)
        await asyncio.sleep(ACCESS_FLUSH_SECONDS * 3)

    with only_the_kit_stream():
        logging.root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        asyncio.run(one_line())  # its loop ends with the line still waiting
        assert stream.getvalue() == ""
        asyncio.run(one_line_then_wait())
        assert len(stream.getvalue().splitlines()) == 2
