"""The cases API documents itself: every route has an operation id, a tag, a response model
and its problem responses."""

from __future__ import annotations

from typing import Any

from upstander.cases.app import create_app
from upstander.cases.settings import Settings


def test_every_case_route_is_documented() -> None:
    spec = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if path.startswith("/cases/v1/") and not path.startswith("/cases/v1/admin/")
        for method, operation in item.items()
    ]

    assert len(operations) >= 25
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("tags"), where
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success, where
        problems = [code for code in operation["responses"] if code[0] in "45"]
        assert "401" in problems and "403" in problems, where
        for code in problems:
            content = operation["responses"][code].get("content", {})
            assert "application/problem+json" in content, (where, code)
    transition = spec["paths"]["/cases/v1/cases/{case_id}/transitions"]["post"]
    example = transition["responses"]["409"]["content"]["application/problem+json"]["example"]
    assert example["allowed"] == ["triage", "referred", "dismissed"]


def _has_example(spec: dict[str, Any], media: dict[str, Any]) -> bool:
    """An example on the media type, on the schema, or on every property of the schema."""
    if "example" in media or "examples" in media:
        return True
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "examples" in schema or "example" in schema:
        return True
    properties = schema.get("properties", {})
    return bool(properties) and all(
        "examples" in p or "example" in p or "$ref" in p or p.get("type") == "array"
        for p in properties.values()
    )


def test_every_case_operation_has_an_id_a_tag_a_schema_examples_and_problems() -> None:
    spec = create_app(Settings(database_url="sqlite+aiosqlite://")).openapi()
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in spec["paths"].items()
        # /cases/v1/admin/ is the kit's outbox administration, documented by the kit.
        if path.startswith("/cases/v1/") and not path.startswith("/cases/v1/admin/")
        for method, operation in item.items()
    ]
    for where, operation in operations:
        assert operation.get("operationId"), where
        assert operation.get("tags"), where
        problems = [c for c in operation["responses"] if c.startswith("4")]
        assert problems, where
        for code in problems:
            assert "application/problem+json" in operation["responses"][code]["content"], where
        # One success, or 201 and 200 for an idempotent create (`open_case`: 200 on a repeat).
        successes = sorted(c for c in operation["responses"] if c.startswith("2"))
        assert len(successes) == 1 or successes == ["200", "201"], where
        for success in successes:
            if success == "204":
                continue  # no content, nothing to exemplify (its problems are checked above)
            content = operation["responses"][success].get("content", {})
            if "application/json" not in content and any(
                media.get("schema", {}).get("format") == "binary" for media in content.values()
            ):
                continue  # a file download (attachments, evidence, exports): bytes, no example
            media = content.get("application/json")
            assert media is not None and media.get("schema"), where
            assert _has_example(spec, media), (where, "response example")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert _has_example(spec, body), (where, "request example")
    operation_ids = {operation["operationId"] for _, operation in operations}
    assert {
        "get_case_stats",
        "update_corrective_action",
        "list_reporter_checkins",
        "answer_reporter_checkin",
        "put_legal_hold",
    } <= operation_ids
