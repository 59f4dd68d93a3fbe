"""Contracts of the gateway's directory events: organisations, people, and access changes.

Every service that keeps a projection of the directory reads these (the projection itself is
`upstander.kit.directory`). The gateway sends every field on every event; a consumer applies
the fields an event carries (`model_fields_set`) and keeps its value for any it does not, so
an older publisher's event never blanks a column. `org_id` may be left to the envelope's
`orgid` (`parse_event` fills it in, and refuses an event whose two disagree).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from upstander.kit.contracts.base import EventData, EventTime
from upstander.kit.contracts.registry import contract

Role = Annotated[str, Field(min_length=1, max_length=64)]


class OrgEvent(EventData):
    """An organisation as the gateway holds it after a change (`upstander.org.*`)."""

    org_id: uuid.UUID | None = Field(
        default=None, description="The organisation; the envelope's `orgid` when absent."
    )
    slug: str = Field(min_length=1, max_length=64, examples=["demo"])
    name: str = Field(max_length=200, examples=["Demo campaign"])
    active: bool = Field(default=True, description="False once an admin switched it off.")


@contract("upstander.org.created", 1)
class OrgCreated(OrgEvent):
    """An organisation was created."""


@contract("upstander.org.updated", 1)
class OrgUpdated(OrgEvent):
    """An organisation's slug, name or `active` changed."""


class PersonEvent(EventData):
    """A person as the gateway's directory holds them after a change (`upstander.person.*`).

    Personal data (email, name, title): consumers that keep it seal it under the person's own
    data key; none of it may reach a log line."""

    person_id: uuid.UUID
    org_id: uuid.UUID | None = Field(
        default=None, description="Their organisation; the envelope's `orgid` when absent."
    )
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    roles: list[Role] = Field(default_factory=list, max_length=32, examples=[["staff"]])
    manager_id: uuid.UUID | None = Field(
        default=None, description="Whom they report to (their reporting line)."
    )
    is_leadership: bool = False
    start_date: date | None = None
    location: str | None = Field(default=None, max_length=64, examples=["CA"])
    language: str | None = Field(default=None, max_length=35, examples=["en"])
    active: bool = True
    external_id: str | None = Field(
        default=None,
        max_length=200,
        description="What the organisation's identity provider or HR system calls them "
        "(SCIM `externalId`).",
        examples=["00ujl29u0le5T6Aj10h7"],
    )


@contract("upstander.person.created", 1)
class PersonCreated(PersonEvent):
    """A person joined the directory (by the API, SCIM or the bootstrap)."""


@contract("upstander.person.updated", 1)
class PersonUpdated(PersonEvent):
    """A directory field of a person changed (roles, manager, leadership, contact...)."""


@contract("upstander.person.deactivated", 1)
class PersonDeactivated(PersonEvent):
    """A person was switched off: consumers keep them (and their place in reporting lines)
    inactive, whatever `active` says."""


SubjectKind = Literal["staff", "client", "org"]


@contract("upstander.access.changed", 1)
class AccessChanged(EventData):
    """The state of one subject's access after a change (`upstander.kit.revocation`).

    `subject` is what tokens carry as `sub` (a person's id, an API client's `client_id`),
    or an organisation's id for `kind="org"`. `version` only grows for people and clients;
    organisations have none (0), and their latest `changed_at` wins."""

    kind: SubjectKind
    subject: str = Field(min_length=1, max_length=200)
    org_id: uuid.UUID | None = None
    active: bool
    version: int = Field(ge=0)
    changed_at: EventTime
