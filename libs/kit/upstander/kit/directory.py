"""One directory projection for every service: apply the gateway's `upstander.org.*` and
`upstander.person.*` events (typed: `upstander.kit.contracts.OrgEvent`, `PersonEvent`) to the
service's own table, whatever columns it keeps.

Each service keeps its own table (cases and notify seal contact details under the person's
data key, training keeps supervisor clocks, intake keeps only the organisation); this module
maps the fields they have in common, and gives every anomaly one behaviour:

- malformed, or no organisation at all: `InvalidEvent` (from `parse_event`, or here): a dead
  letter at once, never retried;
- a field left out: the row keeps its value (only the fields an event carries are applied);
- a known person moved to another organisation: ignored, logged with ids (people never move
  between tenants);
- older than what the row last applied (tables with a `last_event_at` column): ignored.
  Events about one person arrive in order on both transports; this also covers a dead
  letter requeued late. Tables without the column rely on that order;
- an organisation the projection does not hold yet: applied (org and person events travel on
  different subjects, so either may come first);
- the person named as their own manager: no manager;
- a repeat: the same row again (the inbox skips exact repeats before this runs).

Nothing here raises anything that a retry could fix differently, so a bad directory event
never blocks the person's later events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import String
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.contracts import OrgEvent, PersonDeactivated, PersonEvent, organisation_of
from upstander.kit.crypto import Vault

log = logging.getLogger("upstander.directory")

Row = TypeVar("Row")

# The person fields a projection may keep, by the column name they land in.
PERSON_FIELDS = (
    "email",
    "name",
    "title",
    "roles",
    "manager_id",
    "is_leadership",
    "start_date",
    "location",
    "language",
    "active",
)
ORG_FIELDS = ("slug", "name", "active")
# Values a new row starts from, for the columns it has (before the event's fields apply).
_NEW_ROW = {"roles": [], "is_leadership": False, "language": "en", "active": True}

Normaliser = Callable[[Any], Any]


@dataclass
class PersonChange(Generic[Row]):
    """What `upsert_person` did: the row, whether it is new, and the previous value of every
    column the event changed (training restarts clocks from these)."""

    person: Row
    created: bool
    previous: dict[str, Any] = field(default_factory=dict)


def _columns(table: type[Any]) -> dict[str, Any]:
    return {column.key: column for column in sa_inspect(table).columns}


def _fit(value: Any, column: Any) -> Any:
    """Cut a string to its column's size (the contracts' bounds are the gateway's; a service
    column may be smaller)."""
    length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
    if isinstance(value, str) and length is not None:
        return value[:length]
    return value


async def upsert_person(
    session: AsyncSession,
    table: type[Row],
    event: PersonEvent,
    *,
    at: datetime | None = None,
    vault: Vault | None = None,
    defaults: Mapping[str, Any] | None = None,
    normalise: Mapping[str, Normaliser] | None = None,
) -> PersonChange[Row] | None:
    """Create or update the person `event` describes in `table` (the service's mapped class:
    `id` and `org_id` columns, and any of `PERSON_FIELDS`). Returns None when the event is
    ignored (see the module). Only flushes.

    - `at`: the event's time; a table with a `last_event_at` column refuses older events and
      records it.
    - `vault`: creates the person's data key with a new row (tables that seal columns).
    - `defaults`: column values of a new row (timestamps, service-only columns).
    - `normalise`: per column, a function of the event's value to the stored one (e.g. a
      language code reduced to the languages a service speaks)."""
    org_id = organisation_of(event)
    person_id = event.person_id
    columns = _columns(table)
    row: Any = await session.get(table, person_id)
    if row is not None and row.org_id != org_id:
        log.warning(
            "person event naming another organisation ignored",
            extra={"person_id": str(person_id), "org_id": str(org_id)},
        )
        return None
    keeps_time = "last_event_at" in columns and at is not None
    if row is not None and keeps_time and row.last_event_at is not None:
        if row.last_event_at > at:
            return None  # a newer event already applied

    created = row is None
    if row is None:
        if vault is not None:
            await vault.create_key(session, org_id=org_id, owner_id=person_id)
        # Copies: a list default shared between rows would change with any one of them.
        initial = {
            name: list(value) if isinstance(value, list) else value
            for name, value in _NEW_ROW.items()
            if name in columns
        }
        new_row: Callable[..., Any] = table
        row = new_row(id=person_id, org_id=org_id, **{**initial, **(defaults or {})})
        session.add(row)

    wanted: dict[str, Any] = {
        name: getattr(event, name)
        for name in PERSON_FIELDS
        if name in columns and name in event.model_fields_set
    }
    if "roles" in wanted:
        wanted["roles"] = sorted(set(wanted["roles"]))
    if wanted.get("manager_id") == person_id:
        wanted["manager_id"] = None  # nobody manages themselves: no cycle of one
    if isinstance(event, PersonDeactivated) and "active" in columns:
        wanted["active"] = False
    previous: dict[str, Any] = {}
    for name, value in wanted.items():
        if normalise and name in normalise:
            value = normalise[name](value)
        value = _fit(value, columns[name])
        before = getattr(row, name, None)
        if created or before != value:
            if not created:
                previous[name] = before
            setattr(row, name, value)
    if keeps_time:
        row.last_event_at = at
    await session.flush()
    return PersonChange(person=row, created=created, previous=previous)


async def upsert_org(session: AsyncSession, table: type[Row], event: OrgEvent) -> Row:
    """Create or update the organisation `event` describes in `table` (`id`, and any of
    `slug`, `name`, `active`). A field the event leaves out or sends empty keeps its value.
    Only flushes."""
    org_id = organisation_of(event)
    columns = _columns(table)
    row: Any = await session.get(table, org_id)
    if row is None:
        initial = {"slug": "", "name": "", "active": True}
        new_row: Callable[..., Any] = table
        row = new_row(id=org_id, **{k: v for k, v in initial.items() if k in columns})
        session.add(row)
    for name in ORG_FIELDS:
        if name not in columns or name not in event.model_fields_set:
            continue
        value = getattr(event, name)
        if value in (None, "") and name != "active":
            continue
        setattr(row, name, _fit(value, columns[name]))
    await session.flush()
    return row  # type: ignore[no-any-return]
