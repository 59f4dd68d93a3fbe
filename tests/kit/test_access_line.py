"""The access line written straight to the kit's JSON stream is the line the logging path
writes for the same request (the fallback when anything else listens, a test's capture say)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest

from upstander.kit.observability import (
    AccessLog,
    JsonFormatter,
    Metrics,
    _json_stream_of,
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
