"""The base of every event contract: one Pydantic model per event type and version, strict
when a publisher builds it, tolerant when a consumer reads it.

- Publishing: `Model(...)` forbids unknown fields (`extra="forbid"`, nested models too), so a
  publisher cannot send a field the contract does not name; `.model_dump(mode="json")` is the
  event's `data`.
- Consuming: `upstander.kit.contracts.parse_event` validates with `extra="ignore"`, so a
  consumer reads an event from a newer publisher that added optional fields, and drops them.

Every other rule (types, required fields, bounds) holds both ways. A field's bounds are the
publisher's own column sizes: an event that breaks them can never be applied, so it is an
`InvalidEvent` (a dead letter at once), never retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer

from upstander.kit.errors import BadRequest
from upstander.kit.events import PermanentEventError

SCHEMA_BASE = "https://upstander.dev/events/schemas/"


def _isoformat(moment: datetime) -> str:
    return moment.isoformat()


# A time with its zone, written as `datetime.isoformat()` gives it (`+00:00`, as every
# publisher wrote before the contracts: webhook receivers and templates see the same text).
EventTime = Annotated[AwareDatetime, PlainSerializer(_isoformat, return_type=str, when_used="json")]


class EventData(BaseModel):
    """The `data` of one event type at one version (see the module for the two directions)."""

    model_config = ConfigDict(extra="forbid")

    # The event type and contract version this model is the data of (`registry.contract`).
    EVENT_TYPE: ClassVar[str] = ""
    EVENT_VERSION: ClassVar[int] = 0


class Part(BaseModel):
    """A nested object of an event's data (forbids unknown fields like `EventData`)."""

    model_config = ConfigDict(extra="forbid")


class InvalidEvent(BadRequest, PermanentEventError):
    """An event whose data breaks its contract (or whose type or version no contract names):
    it can never succeed, however often it comes, so the transport makes it a dead letter at
    once (a `PermanentEventError`; over the single-event HTTP route, a 400 problem). The
    message and `fields` name field paths only, never values (they may be report content)."""
