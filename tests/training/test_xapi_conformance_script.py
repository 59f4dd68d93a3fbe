"""`make conformance`'s script: it reads the suite's log tree into failures, and it reuses the
node_modules cached outside the repository instead of running npm again."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "xapi_conformance.py"


@pytest.fixture(scope="module")
def script() -> Any:
    spec = importlib.util.spec_from_file_location("xapi_conformance", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["xapi_conformance"] = module
    spec.loader.exec_module(module)
    return module


def test_failures_are_the_failed_leaves_with_their_path(script: Any) -> None:
    log = {
        "title": "root",
        "status": "failed",
        "tests": [
            {
                "title": "Statements",
                "status": "failed",
                "tests": [
                    {"title": "stores", "status": "passed", "tests": []},
                    {
                        "title": "rejects nulls",
                        "status": "failed",
                        "error": {"message": "Expected 400 got 200"},
                        "tests": [],
                    },
                ],
            },
            {"title": "About", "status": "passed", "tests": [None]},
        ],
    }
    assert script.failures(log) == [("root › Statements › rejects nulls", "Expected 400 got 200")]


def test_a_cached_install_is_copied_not_reinstalled(
    script: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "suite-source"
    (suite / "local" / "supertest").mkdir(parents=True)
    (suite / "package.json").write_text('{"name": "suite"}')
    digest = hashlib.sha256((suite / "package.json").read_bytes()).hexdigest()[:16]
    cache = tmp_path / "cache"
    cached = cache / digest
    (cached / "node_modules" / "mocha").mkdir(parents=True)
    (cached / "node_modules" / "mocha" / "index.js").write_text("// mocha")
    (cached / ".complete").touch()
    monkeypatch.setattr(script, "CACHE_ROOT", cache)

    def no_npm(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("npm must not run when the cache is complete")

    monkeypatch.setattr(script.subprocess, "run", no_npm)
    prepared = script.prepare_suite(suite, tmp_path / "work")
    assert (prepared / "node_modules" / "mocha" / "index.js").read_text() == "// mocha"
    assert (prepared / "package.json").is_file()
