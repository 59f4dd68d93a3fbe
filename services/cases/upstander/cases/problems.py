"""The cases service's own problem types (RFC 9457), each a stable `type` URI under
https://upstander.dev/problems/ (documented in docs/problems-cases.md)."""

from __future__ import annotations

from typing import Any

from upstander.kit.errors import (
    PROBLEM_JSON,
    Conflict,
    Forbidden,
    PreconditionFailed,
    ProblemError,
)


class InvalidTransition(Conflict):
    """The case cannot move to that state from its current one; `allowed` lists where it can."""

    slug, title = "invalid-transition", "Invalid transition"


class TransitionBlocked(Conflict):
    """The move is allowed but a guard is not met yet; `unmet` lists which ones."""

    slug, title = "transition-blocked", "Transition blocked"


class SeparationOfDuties(Forbidden):
    """Whoever wrote a finding cannot approve the decision that closes the case."""

    slug, title = "separation-of-duties", "Separation of duties"


class ConflictOfInterest(Conflict):
    """The person cannot handle this case; `rule` says why, never who they are linked to."""

    slug, title = "conflict-of-interest", "Conflict of interest"


class StaleVersion(PreconditionFailed):
    """`If-Match` names a version the case no longer has."""

    slug, title = "stale-version", "Stale version"


class InvalidRequest(ProblemError):
    """A request that is well-formed but not acceptable in this case's state (422)."""

    status, slug, title = 422, "validation-error", "Validation error"

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(
            "The request did not validate.", errors=[{"field": field, "message": message}], **extra
        )


def problem_example(status: int, slug: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A documented example of one problem response (for `responses=`)."""
    return {
        "content": {
            PROBLEM_JSON: {
                "example": {
                    "type": f"https://upstander.dev/problems/{slug}",
                    "title": slug.replace("-", " ").capitalize(),
                    "status": status,
                    "detail": detail,
                    **extra,
                }
            }
        }
    }


def merge_responses(*parts: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Merge `responses=` dicts, keeping each status's schema and adding examples to it."""
    merged: dict[int | str, dict[str, Any]] = {}
    for part in parts:
        for status, spec in part.items():
            target = merged.setdefault(status, {})
            for key, value in spec.items():
                if key == "content" and "content" in target:
                    for media, media_spec in value.items():
                        target["content"].setdefault(media, {}).update(media_spec)
                else:
                    target[key] = value
    return merged
