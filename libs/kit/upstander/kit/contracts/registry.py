"""The registry of event contracts (event type and version → data model) and the one way a
consumer reads an event's data: `parse_event`.

Versions: a contract's version changes only when a change would break a consumer (a field
removed, renamed, retyped, or made required). Adding an optional field keeps the version:
consumers ignore what they do not know. An event names its version in the CloudEvents
`dataschema` attribute (`schema_uri`: `.../<type>.v<N>.json`); an event without one is
version 1, the version every contract started at.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, overload

from pydantic import ValidationError

from upstander.kit.contracts.base import SCHEMA_BASE, EventData, InvalidEvent
from upstander.kit.events import CloudEvent

M = TypeVar("M", bound=EventData)

# (type, version) → model. Filled by `@contract` as the contract modules load (the package's
# `__init__` imports them all).
CONTRACTS: dict[tuple[str, int], type[EventData]] = {}

_SCHEMA_NAME = re.compile(r"(?P<type>[a-z0-9_.]+)\.v(?P<version>[1-9][0-9]*)\.json\Z")


def contract(event_type: str, version: int) -> Callable[[type[M]], type[M]]:
    """Register `model` as the data of `event_type` at `version`."""

    def register(model: type[M]) -> type[M]:
        key = (event_type, version)
        if key in CONTRACTS:
            raise ValueError(f"two contracts for {event_type} v{version}")
        model.EVENT_TYPE, model.EVENT_VERSION = event_type, version
        CONTRACTS[key] = model
        return model

    return register


def event_types() -> list[str]:
    """Every event type with a contract, sorted."""
    return sorted({event_type for event_type, _ in CONTRACTS})


def latest_version(event_type: str) -> int | None:
    versions = [version for known, version in CONTRACTS if known == event_type]
    return max(versions) if versions else None


def contract_for(event_type: str, version: int | None = None) -> type[EventData] | None:
    """The model of `event_type` at `version` (default: the latest), or None."""
    if version is None:
        version = latest_version(event_type)
        if version is None:
            return None
    return CONTRACTS.get((event_type, version))


def schema_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.json"


def schema_uri(event_type: str, version: int) -> str:
    """The `$id` of the contract's JSON Schema, and the `dataschema` an event of it names."""
    return SCHEMA_BASE + schema_name(event_type, version)


def version_of(event: CloudEvent) -> int:
    """The contract version an event says its data follows (its `dataschema`), else 1."""
    dataschema = event.dataschema
    if dataschema in (None, ""):
        return 1
    found = _SCHEMA_NAME.search(str(dataschema).rsplit("/", 1)[-1])
    if found is None or found["type"] != event.type:
        raise InvalidEvent(f"Unknown dataschema for {event.type}.", fields=["dataschema"])
    return int(found["version"])


def _fields(error: ValidationError) -> list[str]:
    # Field paths only: the values may be report content.
    return sorted({".".join(str(part) for part in e["loc"]) for e in error.errors()})


def parse_data(
    event_type: str,
    data: Mapping[str, Any],
    *,
    version: int = 1,
    org_id: uuid.UUID | None = None,
) -> EventData:
    """Validate `data` as a consumer does (unknown fields ignored) against the contract of
    `event_type` at `version`. With `org_id` (the envelope's organisation), a model with an
    `org_id` field gets it when the data leaves it out, and an event whose two differ is
    refused. Anything wrong is an `InvalidEvent`."""
    model = CONTRACTS.get((event_type, version))
    if model is None:
        raise InvalidEvent(f"No contract for {event_type} v{version}.", fields=["type"])
    try:
        parsed = model.model_validate(data, extra="ignore")
    except ValidationError as error:
        raise InvalidEvent(f"Malformed {event_type} data.", fields=_fields(error)) from None
    if org_id is not None and "org_id" in type(parsed).model_fields:
        stated = getattr(parsed, "org_id", None)
        if stated is None:
            parsed = parsed.model_copy(update={"org_id": org_id})
        elif stated != org_id:
            raise InvalidEvent("The event's orgid and data.org_id differ.", fields=["org_id"])
    return parsed


class _WithOrg(Protocol):
    @property
    def org_id(self) -> uuid.UUID | None: ...


def organisation_of(data: _WithOrg) -> uuid.UUID:
    """The organisation of parsed data with an `org_id` (`parse_event` filled it from the
    envelope when the data left it out); none at all is an `InvalidEvent`."""
    if data.org_id is None:
        raise InvalidEvent("The event names no organisation.", fields=["org_id"])
    return data.org_id


@overload
def parse_event(event: CloudEvent) -> EventData: ...
@overload
def parse_event(event: CloudEvent, expected: type[M]) -> M: ...
def parse_event(event: CloudEvent, expected: type[EventData] = EventData) -> EventData:
    """The event's data as its contract's model: what every consumer calls instead of reading
    `event.data` by hand. `expected` (a contract or a base of several, e.g. `PersonEvent`)
    also refuses an event of another kind. Raises `InvalidEvent` (a dead letter at once): a
    type or version without a contract, data that breaks it, an `orgid` that is not a UUID or
    disagrees with `data.org_id`."""
    try:
        envelope_org = event.org_id
    except ValueError:
        raise InvalidEvent("The event's orgid is not a UUID.", fields=["orgid"]) from None
    parsed = parse_data(event.type, event.data, version=version_of(event), org_id=envelope_org)
    if not isinstance(parsed, expected):
        raise InvalidEvent(f"{event.type} is not a {expected.__name__} event.", fields=["type"])
    return parsed
