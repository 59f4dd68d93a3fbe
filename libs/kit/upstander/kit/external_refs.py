"""External references (`[{"system": "workday", "id": "E-1042"}]`) as every app reads them:
the `?external_ref=<system>:<id>` filter and the one-reference-per-system rule. Each app keeps
its own table and schemas (their documentation names what is referenced)."""

from __future__ import annotations

from collections.abc import Iterable

from upstander.kit.errors import BadRequest, Conflict


def parse_external_ref(value: str) -> tuple[str, str]:
    """`workday:E-1042` → ("workday", "E-1042"); anything else is a 400."""
    system, _, external_id = value.partition(":")
    if not system.strip() or not external_id.strip():
        raise BadRequest("external_ref is `<system>:<id>`, e.g. `workday:E-1042`.")
    return system.strip().lower(), external_id.strip()


def one_per_system(systems: Iterable[str]) -> None:
    """A record holds at most one reference in each system: two are a 409."""
    listed = list(systems)
    if len(set(listed)) != len(listed):
        raise Conflict("One reference per system.", rule="external_ref_system_twice")
