"""External references (`[{"system": "workday", "id": "E-1042"}]`) as every app reads and keeps
them: the `?external_ref=<system>:<id>` filter, the one-reference-per-system rule, the lookups
by reference and the attaching of new ones. Each app keeps its own table (a row per
reference: `org_id`, `system`, `external_id` and the owner's id) and its own schemas (their
documentation names what is referenced)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, MutableSequence, Sequence
from typing import Any, Protocol

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest, Conflict

# What a system's name may be, in every app's schemas.
SYSTEM_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"


class RefLike(Protocol):
    """A reference as a request carries it (each app's `ExternalRefIn`)."""

    @property
    def system(self) -> str: ...

    @property
    def id(self) -> str: ...


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


def has_ref(
    table: Any,
    owner: Any,
    owner_id: Any,
    org_id: uuid.UUID,
    system: str,
    external_id: str,
) -> ColumnElement[bool]:
    """The condition "the record `owner_id` (e.g. `Person.id`) has the reference
    `system:external_id` in this organisation", for a reference `table` whose `owner` column
    (e.g. `PersonExternalRef.person_id`) names the record."""
    return exists().where(
        owner == owner_id,
        table.org_id == org_id,
        table.system == system,
        table.external_id == external_id,
    )


async def ref_owners(
    session: AsyncSession, owner: Any, org_id: uuid.UUID, refs: Sequence[RefLike]
) -> set[uuid.UUID]:
    """The records of the organisation that `refs` name (ids from the `owner` column of
    its reference table)."""
    table = owner.class_
    found: set[uuid.UUID] = set()
    for ref in refs:
        owner_id = await session.scalar(
            select(owner).where(
                table.org_id == org_id, table.system == ref.system, table.external_id == ref.id
            )
        )
        if owner_id is not None:
            found.add(owner_id)
    return found


def attach_refs(
    rows: MutableSequence[Any],
    refs: Sequence[RefLike],
    new_row: Callable[[str, str], Any],
    *,
    replace: bool = False,
) -> bool:
    """Give a record's reference `rows` the `refs` they lack (a new id in a system replaces
    the old one; `new_row(system, external_id)` makes a row); with `replace`, also drop the
    systems not in `refs`. The caller checked that none names another record. Returns
    whether anything changed."""
    current = {row.system: row for row in rows}
    changed = False
    if replace:
        wanted = {ref.system for ref in refs}
        for dropped in [row for row in rows if row.system not in wanted]:
            rows.remove(dropped)
            changed = True
    for ref in refs:
        row = current.get(ref.system)
        if row is not None and row.external_id == ref.id:
            continue
        if row is not None:
            row.external_id = ref.id
        else:
            rows.append(new_row(ref.system, ref.id))
        changed = True
    return changed
