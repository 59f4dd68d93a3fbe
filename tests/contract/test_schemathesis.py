"""Schemathesis against the merged OpenAPI of the running platform: every operation the gateway
documents is called with generated requests (valid ones and, for the validation paths,
invalid ones), and every answer must be no server error, a documented status, of a documented
content type, and match its documented schema.

How it runs: the whole platform is in process (tests/harness.py), on the test session's event
loop; Schemathesis builds the requests from the spec the gateway serves (`GET /openapi.json`)
and Hypothesis drives each operation from a worker thread, whose requests go to the
platform's loop through the gateway's ASGI transport (`from_asgi` would run the apps on a loop
of their own, apart from the databases they hold). A bounded number of examples per operation
and a time budget keep the run short; SQLite only (the answers do not depend on the backend).

Exclusions (with why) are in `EXCLUDED`: only signing out, which would end the run's own
token. The other operations that change or delete things (people, clients, rules, webhooks,
the org's name and form, token revocation, requeues) act on ids and tokens the generator makes
up or on the demo organisation's own settings, so they destroy nothing the run needs, and
nothing sleeps.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import helpers
import httpx
import pytest
import requests
import schemathesis
from harness import Platform, running_platform
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Examples per operation and generation mode (explicit examples from the spec come on top):
# an admin gets valid and invalid requests; a case manager, refused some operations by role,
# a few valid ones (what differs for them is the 403s).
ADMIN_EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}
CASE_MANAGER_EXAMPLES = {GenerationMode.POSITIVE: 2}
# Wall-clock budget for one caller's run; past it, the operations left are reported, not run.
BUDGET_SECONDS = 90.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations not fuzzed, each with the reason. Keep this short: everything else is.
EXCLUDED: dict[tuple[str, str], str] = {
    ("POST", "/auth/logout"): (
        "signs out the very token the run sends (it goes as `Authorization: Bearer`), so every "
        "later request would be 401 token-revoked (what it answers is for its own tests)"
    ),
}

pytestmark = [
    pytest.mark.skipif(
        helpers.selected_backend() != "sqlite",
        reason="runs once, on SQLite: the answers' shapes do not depend on the database backend",
    ),
    # Schemathesis' own strategies draw from `random` (its concern, not a flaw of the API).
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]


@pytest.fixture(scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    directory = tmp_path_factory.mktemp("schemathesis")
    # Hypothesis keeps caches in `.hypothesis/` of the working directory: not in the tree.
    set_hypothesis_home_dir(directory / "hypothesis")
    try:
        async with running_platform(directory) as running:
            yield running
    finally:
        set_hypothesis_home_dir(None)


@dataclass
class Run:
    """One caller's fuzzing run: what was called, what failed."""

    operations: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _httpx_request(kwargs: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    """A Schemathesis case's transport arguments (made for `requests`) as the bytes httpx
    sends: `requests` encodes the body (JSON, forms, multipart) exactly as Schemathesis means."""
    allowed = ("method", "url", "headers", "files", "data", "params", "cookies", "json")
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()
    body = prepared.body or b""
    content = body.encode() if isinstance(body, str) else bytes(body)
    assert prepared.method is not None and prepared.url is not None
    return prepared.method, prepared.url, dict(prepared.headers), content


def _fuzz_operation(
    operation: Any,
    mode: Any,
    max_examples: int,
    send: Callable[[str, str, dict[str, str], bytes], httpx.Response],
    token: str,
    base_url: str,
    run: Run,
) -> None:
    """Drive one operation with Hypothesis (in this worker thread); raise on a failed check."""

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # nothing written into the working tree
        derandomize=True,  # the same requests on every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        kwargs = case.as_transport_kwargs(
            base_url=base_url, headers={"authorization": f"Bearer {token}"}
        )
        try:
            method, url, headers, content = _httpx_request(kwargs)
            response = send(method, url, headers, content)
        except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeError, ValueError):
            reject()  # a request no HTTP client can put on the wire
        run.examples += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


async def fuzz(platform: Platform, email: str, examples: dict[Any, int]) -> Run:
    """Every documented operation, as `email`, with at most `examples` per generation mode,
    within the budget."""
    spec = (await platform.gateway.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(spec)
    token = await platform.token(email)
    base_url = str(platform.gateway.base_url).rstrip("/")
    loop = asyncio.get_running_loop()

    def send(method: str, url: str, headers: dict[str, str], content: bytes) -> httpx.Response:
        request = platform.gateway.request(method, url, headers=headers, content=content)
        return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=60)

    run = Run()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        if time.monotonic() - started > BUDGET_SECONDS:
            run.not_run.append(label)
            continue
        run.operations += 1
        for mode, count in examples.items():
            try:
                await asyncio.to_thread(
                    _fuzz_operation, operation, mode, count, send, token, base_url, run
                )
            except Unsatisfiable:
                # No input of this mode exists (a negative request for an operation without
                # parameters or body): nothing to send, nothing failed.
                continue
            except (Exception, BaseExceptionGroup) as failure:  # a failed check, or a crash
                run.failures.append(f"{label} ({mode.value}): {failure}"[:4000])
    run.seconds = time.monotonic() - started
    return run


def _report(run: Run) -> str:
    return "\n\n".join(run.failures)


@pytest.mark.parametrize(
    ("email", "examples"),
    [
        ("admin@demo.example", ADMIN_EXAMPLES),
        ("case_manager@demo.example", CASE_MANAGER_EXAMPLES),
    ],
    ids=["admin", "case_manager"],
)
async def test_every_documented_operation_answers_as_documented(
    platform: Platform, email: str, examples: dict[Any, int]
) -> None:
    run = await fuzz(platform, email, examples)
    if run.not_run:
        warnings.warn(
            f"time budget spent: {len(run.not_run)} operations not fuzzed: {run.not_run}",
            stacklevel=1,
        )
    assert run.operations >= 100
    assert not run.failures, f"{len(run.failures)} failing operations:\n\n" + _report(run)
