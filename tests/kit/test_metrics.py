"""`/metrics` as the kit writes it (`upstander.kit.metrics`) holds the same series and values
as prometheus_client would write for the same counts: both are parsed with prometheus_client's
own parser and compared, its `_created` series aside. And the apps never load
prometheus_client."""

from __future__ import annotations

import prometheus_client
import pytest
from helpers import python_output
from prometheus_client.parser import text_string_to_metric_families

from upstander.kit import metrics
from upstander.kit.observability import Metrics

AWKWARD = 'a "quoted" \\ back\nslash'


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _types(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def _fill(counter: object, histogram: object) -> None:
    for method, route, status, seconds in [
        ("GET", "/cases/v1/cases", "200", 0.004),
        ("GET", "/cases/v1/cases", "200", 0.005),
        ("GET", "/cases/v1/cases", "200", 0.3),
        ("POST", "/cases/v1/cases", "201", 12.0),
        ("GET", AWKWARD, "404", 0.075),
    ]:
        counter.labels("cases", method, route, status).inc()  # type: ignore[attr-defined]
        histogram.labels("cases", method, route).observe(seconds)  # type: ignore[attr-defined]


def test_the_exposition_matches_prometheus_client() -> None:
    ours = metrics.Registry()
    theirs = prometheus_client.CollectorRegistry()
    labels = ["service", "method", "route", "status"]
    _fill(
        metrics.Counter("http_requests_total", "HTTP requests", labels, ours),
        metrics.Histogram(
            "http_request_duration_seconds", "HTTP request latency", labels[:3], ours
        ),
    )
    _fill(
        prometheus_client.Counter("http_requests_total", "HTTP requests", labels, registry=theirs),
        prometheus_client.Histogram(
            "http_request_duration_seconds", "HTTP request latency", labels[:3], registry=theirs
        ),
    )
    ours_text = ours.render().decode()
    theirs_text = prometheus_client.generate_latest(theirs).decode()

    assert _samples(ours_text) == _samples(theirs_text)
    assert _types(ours_text) == {
        name: kind for name, kind in _types(theirs_text).items() if not name.endswith("_created")
    }
    assert metrics.CONTENT_TYPE == prometheus_client.CONTENT_TYPE_LATEST
    # The test's look-up, as prometheus_client's registry answers it.
    wanted = {"service": "cases", "method": "GET", "route": "/cases/v1/cases", "status": "200"}
    assert ours.get_sample_value("http_requests_total", wanted) == 3.0
    assert theirs.get_sample_value("http_requests_total", wanted) == 3.0
    assert ours.get_sample_value("http_requests_total", {**wanted, "status": "500"}) is None


def test_labels_are_checked_and_counters_only_go_up() -> None:
    registry = metrics.Registry()
    counter = metrics.Counter("jobs", "Jobs", ["kind"], registry)
    assert counter.name == "jobs_total"
    with pytest.raises(ValueError):
        counter.labels("a", "b")
    with pytest.raises(ValueError):
        counter.labels("a").inc(-1)
    assert registry.render().decode() == (
        '# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total{kind="a"} 0.0\n'
    )


def test_an_app_serves_its_metrics_without_prometheus_client() -> None:
    app_metrics = Metrics("cases")
    app_metrics.requests.labels("cases", "GET", "/x", "200").inc()
    response = app_metrics.render()
    assert response.media_type == metrics.CONTENT_TYPE
    assert b'http_requests_total{service="cases",method="GET",route="/x",status="200"} 1.0' in (
        response.body
    )

    script = (
        "import sys\n"
        "from upstander.cases.app import create_app\n"
        "create_app()\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    assert python_output(script)[-1] == "False"
