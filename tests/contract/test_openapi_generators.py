"""The merged OpenAPI document as other people's tools read it: it validates
(openapi-spec-validator), openapi-python-client generates a client from it with no warning
whose operations cover every operation of every path, and the TypeScript types that
openapi-typescript (npm, `tools/package.json`) generates compile with `tsc --noEmit`. It also
documents, on every operation, what the edge and the kit do to any request: 429 with
`Retry-After` and problem responses, `Idempotency-Key` on the writes that honour it, and
`X-Experience-API-Version` on the xAPI operations.

The Node tools come from `npm ci --prefix tools` (.ci/run does it). Without them this module's
TypeScript test is skipped, saying so; in CI (`CI=true`) it fails instead."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from upstander.gateway.edge.openapi import HTTP_METHODS, merge_openapi, polish

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
PYTHON_CLIENT_CONFIG = TOOLS / "openapi-python-client.yaml"
SERVICES = ("intake", "cases", "training", "notify")
PROBLEM_JSON = "application/problem+json"
WRITES = {"post", "put", "patch", "delete"}


def _document(name: str) -> dict[str, Any]:
    settings = importlib.import_module(f"upstander.{name}.settings").Settings(
        database_url="sqlite+aiosqlite://"
    )
    app = importlib.import_module(f"upstander.{name}.app").create_app(settings)
    document: dict[str, Any] = app.openapi()
    return document


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    """The document `/openapi.json` serves: each part's own, merged, then polished."""
    sources = {name: _document(name) for name in ("gateway", *SERVICES)}
    return polish(merge_openapi(sources["gateway"], {n: sources[n] for n in SERVICES}, []))


@pytest.fixture(scope="module")
def merged_file(merged: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(merged))
    return path


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _header_names(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    names = set()
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].split("/")[-1]]
        if parameter["in"] == "header":
            names.add(parameter["name"].lower())
    return names


# ----------------------------------------------------------------------------- the document


def test_the_merged_document_validates(merged: dict[str, Any]):
    validate(merged)  # raises on any error (OpenAPI 3.1 schema and semantics)


def test_operation_ids_and_schema_titles_are_unique(merged: dict[str, Any]):
    ids = [operation["operationId"] for _, _, operation in _operations(merged)]
    titles = [schema.get("title", name) for name, schema in merged["components"]["schemas"].items()]

    assert len(ids) == len(set(ids))
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)


def test_every_operation_documents_rate_limits_and_problems(merged: dict[str, Any]):
    for method, path, operation in _operations(merged):
        responses = operation["responses"]
        limited = responses.get("429")
        assert limited, (method, path)
        assert "Retry-After" in limited["headers"], (method, path)
        assert PROBLEM_JSON in limited["content"], (method, path)
        assert PROBLEM_JSON in responses["500"]["content"], (method, path)
        assert "503" in responses, (method, path)  # `/healthz` says why, in its own shape


def test_idempotency_key_is_documented_on_the_writes_that_honour_it(merged: dict[str, Any]):
    with_key = {
        (method, path)
        for method, path, operation in _operations(merged)
        if "idempotency-key" in _header_names(merged, operation)
    }

    for write in (
        ("post", "/identity/v1/people"),
        ("post", "/identity/v1/orgs"),
        ("post", "/cases/v1/cases/{case_id}/transitions"),
        ("post", "/notify/v1/webhooks"),
    ):
        assert write in with_key, write
    # Reads are never replayed; token requests authenticate by credentials, never a token.
    assert not any(method == "get" for method, _ in with_key)
    assert ("post", "/auth/token") not in with_key
    for method, path, operation in _operations(merged):
        if method in WRITES and any(operation.get("security") or []):
            if not path.startswith("/auth/"):
                assert (method, path) in with_key, (method, path)


def test_the_xapi_operations_document_their_version_header(merged: dict[str, Any]):
    xapi = [
        (method, path, operation)
        for method, path, operation in _operations(merged)
        if path.startswith("/training/v1/xapi/")
    ]

    assert len(xapi) >= 4
    for method, path, operation in xapi:
        assert "x-experience-api-version" in _header_names(merged, operation), (method, path)
        answered = [r for status, r in operation["responses"].items() if status.startswith("2")]
        assert all("X-Experience-API-Version" in r.get("headers", {}) for r in answered), path


# ----------------------------------------------------------------------------- generators


def _generated_operations(package: Path) -> set[tuple[str, str]]:
    found = set()
    for module in (package / "api").rglob("*.py"):
        text = module.read_text()
        method = re.search(r'"method": "([a-z]+)"', text)
        url = re.search(r'"url": f?"([^"]+)"', text)
        if method and url:
            found.add((method.group(1), url.group(1)))
    return found


def test_openapi_python_client_generates_every_operation_without_a_warning(
    merged: dict[str, Any], merged_file: Path, tmp_path: Path
):
    generator = Path(sys.executable).with_name("openapi-python-client")
    output = tmp_path / "client"
    bin_dir = str(Path(sys.executable).parent)  # its post-hooks run ruff from the venv
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(merged_file),
            "--output-path",
            str(output),
            "--meta",
            "none",
            "--config",
            str(PYTHON_CLIENT_CONFIG),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
    )
    said = result.stdout + result.stderr

    assert result.returncode == 0, said
    assert "warning" not in said.lower(), said
    expected = {(method, path) for method, path, _ in _operations(merged)}
    generated = _generated_operations(output)
    assert len(generated) == len(expected)
    assert generated == expected, sorted(expected ^ generated)[:20]


TYPESCRIPT_USE = """\
import type { components, operations, paths } from "./api";

type Problem = components["schemas"]["Problem"];
type CreatedOrg =
  paths["/identity/v1/orgs"]["post"]["responses"][201]["content"]["application/json"];
type OrgBody = operations["create_org"]["requestBody"];
type Limited = paths["/identity/v1/people"]["get"]["responses"][429];

export const problem: Problem = { type: "about:blank", title: "Not found", status: 404 };
export function slugOf(org: CreatedOrg): string {
  return org.slug;
}
export type Everything = [OrgBody, Limited, keyof paths];
"""


def _node_tool(name: str) -> Path | None:
    tool = TOOLS / "node_modules" / ".bin" / name
    return tool if tool.exists() and shutil.which("node") else None


def test_openapi_typescript_types_compile(merged_file: Path, tmp_path: Path):
    generate, compile_ = _node_tool("openapi-typescript"), _node_tool("tsc")
    if generate is None or compile_ is None:
        reason = "node or the npm tools are missing: run `npm ci --prefix tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [str(generate), str(merged_file), "--output", str(tmp_path / "api.d.ts")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    (tmp_path / "use.ts").write_text(TYPESCRIPT_USE)
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "ES2022",
                    "module": "ESNext",
                    "moduleResolution": "Bundler",
                    "types": [],
                },
                "files": ["api.d.ts", "use.ts"],
            }
        )
    )

    compiled = subprocess.run(
        [str(compile_), "--noEmit", "-p", str(tmp_path / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
