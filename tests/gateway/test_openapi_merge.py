"""The gateway's merged OpenAPI document says what every service says: every `$ref`
resolves, no two parts' different schemas share a name, and each operation's schemas mean
what the owning service documents — `GET /training/v1/people` pages training's people, not
the identity `PersonOut` that happens to share the name."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import running_platform

from upstander.gateway.edge.openapi import HTTP_METHODS, SKIPPED_PATHS, merge_openapi

SERVICES = ("intake", "cases", "training", "notify")
PEOPLE = "/training/v1/people"


def _document(name: str) -> dict[str, Any]:
    settings = importlib.import_module(f"upstander.{name}.settings").Settings(
        database_url="sqlite+aiosqlite://"
    )
    app = importlib.import_module(f"upstander.{name}.app").create_app(settings)
    document: dict[str, Any] = app.openapi()
    return document


@pytest.fixture(scope="module")
def sources() -> dict[str, dict[str, Any]]:
    """Each part's own document, as the gateway fetches them (the gateway's first)."""
    return {name: _document(name) for name in ("gateway", *SERVICES)}


@pytest.fixture(scope="module")
def merged(sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return merge_openapi(sources["gateway"], {n: sources[n] for n in SERVICES}, [])


# ----------------------------------------------------------------------------- helpers


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _target(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _inline(document: dict[str, Any], node: Any, stack: tuple[str, ...] = ()) -> Any:
    """`node` with every reference replaced by what it names, recursively; a reference back
    into the chain being inlined becomes its depth, so names never matter."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in stack:
                return {"$recursive": stack.index(ref)}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {
                **_inline(document, _target(document, ref), (*stack, ref)),
                **_inline(document, rest, stack),
            }
        return {key: _inline(document, value, stack) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(document, item, stack) for item in node]
    return node


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                yield path, method, operation


def _meaning(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    """What an operation takes and answers, references inlined (its id may be prefixed)."""
    kept = {k: operation.get(k) for k in ("parameters", "requestBody", "responses")}
    return _inline(document, kept)


def _reached(document: dict[str, Any], node: Any) -> set[str]:
    """Every component reference reachable from `node`."""
    seen: set[str] = set()
    pending = list(_refs(node))
    while pending:
        ref = pending.pop()
        if ref not in seen:
            seen.add(ref)
            pending.extend(_refs(_target(document, ref)))
    return seen


def _matches(schema: Any, value: Any, document: dict[str, Any]) -> bool:
    """A small JSON Schema check (the subset FastAPI emits), since `jsonschema` is not
    installed: type, properties, required, items, anyOf/oneOf/allOf, enum, const, $ref."""
    if not isinstance(schema, dict):
        return True
    if "$ref" in schema:
        return _matches(_target(document, schema["$ref"]), value, document)
    if "anyOf" in schema and not any(_matches(s, value, document) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(_matches(s, value, document) for s in schema["oneOf"]) != 1:
        return False
    if "allOf" in schema and not all(_matches(s, value, document) for s in schema["allOf"]):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        checks = {
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
        }
        if not any(checks[kind](value) for kind in allowed):
            return False
    if isinstance(value, dict):
        if any(name not in value for name in schema.get("required", [])):
            return False
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                if not _matches(properties[name], item, document):
                    return False
            elif schema.get("additionalProperties") is False:
                return False
            elif isinstance(schema.get("additionalProperties"), dict) and not _matches(
                schema["additionalProperties"], item, document
            ):
                return False
    if isinstance(value, list) and "items" in schema:
        return all(_matches(schema["items"], item, document) for item in value)
    return True


def _people_schema(document: dict[str, Any]) -> dict[str, Any]:
    response = document["paths"][PEOPLE]["get"]["responses"]["200"]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


# ----------------------------------------------------------------------------- the document


def test_every_reference_in_the_merged_document_resolves(merged: dict[str, Any]) -> None:
    refs = set(_refs(merged))
    assert refs, "the document has references"
    dangling = []
    for ref in refs:
        try:
            _target(merged, ref)
        except KeyError:
            dangling.append(ref)
    assert dangling == []


def test_every_operation_means_in_the_merge_what_its_service_documents(
    sources: dict[str, dict[str, Any]], merged: dict[str, Any]
) -> None:
    compared = 0
    for name, source in sources.items():
        for path, method, operation in _operations(source):
            if path in SKIPPED_PATHS or path.startswith(f"/{name}/internal/"):
                continue
            merged_operation = merged["paths"][path][method]
            assert _meaning(merged, merged_operation) == _meaning(source, operation), (
                name,
                method,
                path,
            )
            compared += 1
    assert compared > 100


def test_no_two_parts_different_schemas_share_a_name(
    sources: dict[str, dict[str, Any]], merged: dict[str, Any]
) -> None:
    """Each merged component that a part's operations reach, under a name that part also
    uses, is that part's component (same content once references are inlined)."""
    schemas = merged["components"]["schemas"]
    checked = 0
    for name, source in sources.items():
        own = source.get("components", {}).get("schemas", {})
        for path, method, _ in _operations(source):
            if path in SKIPPED_PATHS or path.startswith(f"/{name}/internal/"):
                continue
            for ref in _reached(merged, merged["paths"][path][method]):
                component = ref.rsplit("/", 1)[1]
                if ref.startswith("#/components/schemas/") and component in own:
                    ours = _inline(source, {"$ref": ref})
                    theirs = _inline(merged, {"$ref": ref})
                    assert theirs == ours, (name, method, path, component)
                    checked += 1
    assert checked > 100
    # The names really collide across parts; the merge keeps them apart.
    assert "PersonOut" in sources["training"]["components"]["schemas"]
    assert "PersonOut" in sources["gateway"]["components"]["schemas"]
    trainings = [
        n
        for n in schemas
        if _inline(merged, schemas[n])
        == _inline(sources["training"], sources["training"]["components"]["schemas"]["PersonOut"])
    ]
    assert trainings and "PersonOut" not in trainings


def test_the_training_people_page_is_documented_with_trainings_person(
    sources: dict[str, dict[str, Any]], merged: dict[str, Any]
) -> None:
    page = _inline(merged, _people_schema(merged))
    training_person = _inline(sources["training"], {"$ref": "#/components/schemas/PersonOut"})
    identity_person = _inline(sources["gateway"], {"$ref": "#/components/schemas/PersonOut"})
    assert page["properties"]["items"]["items"] == training_person
    assert page["properties"]["items"]["items"] != identity_person
    assert "is_supervisor" in page["properties"]["items"]["items"]["properties"]
    # The identity people page still pages identity's people.
    identity_page = merged["paths"]["/identity/v1/people"]["get"]["responses"]["200"]
    identity_schema = _inline(merged, identity_page["content"]["application/json"]["schema"])
    assert identity_schema["properties"]["items"]["items"] == identity_person


# ----------------------------------------------------------------------------- a real page


async def test_a_real_training_people_page_matches_the_merged_documents_schema(
    tmp_path: Path,
) -> None:
    async with running_platform(tmp_path) as platform:
        document = (await platform.gateway.get("/openapi.json")).json()
        headers = await platform.auth("admin@demo.example")
        response = await platform.gateway.get(PEOPLE, headers=headers)
        identity = await platform.gateway.get("/identity/v1/people", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["items"], "the demo organisation's people reached training"
    schema = _people_schema(document)
    assert _matches(schema, body, document)
    # The identity page's schema would not describe it (what the merge used to document).
    identity_schema = document["paths"]["/identity/v1/people"]["get"]["responses"]["200"]
    identity_page = identity_schema["content"]["application/json"]["schema"]
    assert not _matches(identity_page, body, document)
    assert _matches(identity_page, identity.json(), document)
    assert not _matches(schema, identity.json(), document)
