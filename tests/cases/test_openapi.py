"""The cases API documents itself: every route has an operation id, a tag, a response model
and its problem responses."""

from __future__ import annotations

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
