"""The apps' Prometheus metrics: labelled counters and histograms, written in Prometheus' text
exposition format at `GET /metrics` (the classic lines, which version 1.0.0 of the format, the
content type prometheus_client served and the apps still do, keeps as they are).

The apps keep two metrics (`observability.Metrics`: requests by route and status, and their
latency), updated from the event loop only. prometheus_client did this before; with what it
imports (its own HTTP and WSGI servers, multiprocess files, `timeit`) it was about 1 MB of
every app's memory for a few dozen lines of work (docs/performance.md). The output is the
same series and values as prometheus_client's (tests/kit/test_metrics.py parses both with
prometheus_client's own parser), less the `_created` series, which Prometheus does not need.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"
# prometheus_client's default buckets, in seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _number(value: float) -> str:
    """A sample value as Prometheus (and Go) writes it."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    pairs = [f'{name}="{_escape(value)}"' for name, value in labels.items()]
    return "{" + ",".join(pairs) + "}" if pairs else ""


class Registry:
    """The metrics of one app (several apps can live in one test process)."""

    def __init__(self) -> None:
        self._metrics: list[_Family] = []

    def register(self, metric: _Family) -> None:
        self._metrics.append(metric)

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every sample: (name, labels, value)."""
        for metric in self._metrics:
            yield from metric.samples()

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """A sample's value, or None when there is none (as prometheus_client's registry)."""
        wanted = labels or {}
        for sample, sample_labels, value in self.samples():
            if sample == name and sample_labels == wanted:
                return value
        return None

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in self._metrics:
            lines.extend(metric.lines())
        return ("\n".join(lines) + "\n").encode() if lines else b""


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class _Family:
    """A metric's children by label values, and how they are written."""

    kind = ""

    def __init__(
        self, name: str, documentation: str, labelnames: Iterable[str], registry: Registry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        registry.register(self)

    def _child(self) -> Any:
        raise NotImplementedError

    def _series(self, child: Any) -> Iterator[tuple[str, dict[str, str], float]]:
        """(sample name, labels beyond the family's, value) for one child."""
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {', '.join(self.labelnames)}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._child()
        return child

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        for values, child in self._children.items():
            labels = dict(zip(self.labelnames, values, strict=True))
            for name, extra, value in self._series(child):
                yield name, {**labels, **extra}, value

    def lines(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_help(self.documentation)}"
        yield f"# TYPE {self.name} {self.kind}"
        for name, labels, value in self.samples():
            yield f"{name}{_labels(labels)} {_number(value)}"


class Counter(_Family):
    """A counter by labels. Its samples are named `<name>` (a name ending in `_total`, as
    Prometheus asks of counters; the `_total` is added when missing)."""

    kind = "counter"

    def __init__(
        self, name: str, documentation: str, labelnames: Iterable[str], registry: Registry
    ) -> None:
        super().__init__(
            name if name.endswith("_total") else f"{name}_total",
            documentation,
            labelnames,
            registry,
        )

    def _child(self) -> _CounterChild:
        return _CounterChild()

    def labels(self, *values: str) -> _CounterChild:
        child: _CounterChild = super().labels(*values)
        return child

    def _series(self, child: _CounterChild) -> Iterator[tuple[str, dict[str, str], float]]:
        yield self.name, {}, child.value


class Histogram(_Family):
    """A histogram by labels: `<name>_bucket` (cumulative, `le` the upper bound), `<name>_count`
    and `<name>_sum`."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        registry: Registry,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self.bounds = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))

    def _child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def labels(self, *values: str) -> _HistogramChild:
        child: _HistogramChild = super().labels(*values)
        return child

    def _series(self, child: _HistogramChild) -> Iterator[tuple[str, dict[str, str], float]]:
        running = 0
        for bound, count in zip((*self.bounds, math.inf), child.counts, strict=True):
            running += count
            yield f"{self.name}_bucket", {"le": _number(bound)}, float(running)
        yield f"{self.name}_count", {}, float(running)
        yield f"{self.name}_sum", {}, child.sum
