"""Contracts of the cases service's events (consumed by notify, and forwarded by it, thinned
to ids and a few scalars, to outside webhooks). Ids and case numbers only: never report
content, names, or who is involved (`restricted_person_ids` are ids of people who must never
hear of the case, for notify to leave out), except `reporter_notice` on
`case.message_posted`, which is why that type is sealed in the outbox."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import ConfigDict, Field

from upstander.kit.contracts.base import EventData, EventTime, Part
from upstander.kit.contracts.registry import contract

RoutedTo = Literal["case_managers", "reviewers"]


class CaseEvent(EventData):
    """What every case event but `case.restricted` carries."""

    case_id: uuid.UUID
    number: str = Field(max_length=64, examples=["DEMO-2026-0001"])
    restricted_person_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=10_000,
        description="People who may never see the case or hear about it (ids only).",
    )


class RoutedCaseEvent(CaseEvent):
    routed_to: RoutedTo = Field(
        description="Who handles the case: its org's case managers, or reviewers only."
    )


@contract("upstander.case.opened", 1)
class CaseOpened(RoutedCaseEvent):
    """A case opened from a report (or a retaliation follow-up a check-in answer opened)."""


@contract("upstander.case.rerouted", 1)
class CaseRerouted(RoutedCaseEvent):
    """The case now goes to independent reviewers only."""


@contract("upstander.case.status_changed", 1)
class CaseStatusChanged(RoutedCaseEvent):
    """The case moved through its workflow (`from` → `to`, the case statuses)."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    from_status: str = Field(alias="from", max_length=32, examples=["new"])
    to_status: str = Field(alias="to", max_length=32, examples=["triage"])


@contract("upstander.case.assigned", 1)
class CaseAssigned(RoutedCaseEvent):
    """Someone was given a role on the case (they are told; webhooks get the ids)."""

    person_id: uuid.UUID
    role: str = Field(max_length=32, examples=["investigator"])


@contract("upstander.case.updated", 1)
class CaseUpdated(RoutedCaseEvent):
    """The case changed (its record, assignments or external references): a hint for syncs
    to read the change feed (`GET /cases/v1/changes`), which is the truth. Once per case and
    transaction, alongside the specific event (`case.status_changed`, `case.assigned`...)
    when there is one; not when a case opens (`case.opened`) or is deleted (the feed's
    tombstone). Ids, its status and version: never content."""

    status: str = Field(max_length=32, examples=["investigation"])
    version: int = Field(ge=1, examples=[4], description="The case's version (its ETag).")


DeadlineKind = Literal["acknowledge", "feedback", "action"]


class CaseDeadline(RoutedCaseEvent):
    deadline: DeadlineKind
    due_at: EventTime
    action_id: uuid.UUID | None = Field(
        default=None, description="The corrective action, for `deadline: action` only."
    )


@contract("upstander.case.deadline_approaching", 1)
class CaseDeadlineApproaching(CaseDeadline):
    """A legal deadline is near (48 h before by default); once per deadline."""


@contract("upstander.case.deadline_missed", 1)
class CaseDeadlineMissed(CaseDeadline):
    """A legal deadline passed; once per deadline."""


@contract("upstander.case.action_overdue", 1)
class CaseActionOverdue(CaseEvent):
    """A corrective action passed its `due_at` while open or in progress."""

    action_id: uuid.UUID
    due_at: EventTime


class ReporterNotice(Part):
    """Where to tell a confidential reporter who gave an email that a message awaits them
    (the only personal data a case event carries; notify keeps no copy of the address)."""

    channel: Literal["email"] = "email"
    address: str = Field(max_length=320)
    language: str = Field(default="en", max_length=16)


@contract("upstander.case.message_posted", 1)
class CaseMessagePosted(CaseEvent):
    """A message in the conversation with the reporter."""

    author: Literal["reporter", "handler", "system"]
    reporter_notice: ReporterNotice | None = Field(
        default=None, description="On a handler's message to a confidential reporter only."
    )


@contract("upstander.case.restricted", 1)
class CaseRestricted(EventData):
    """The case is now hidden from more people (only those newly restricted). Never forwarded
    to webhooks: it names people."""

    case_id: uuid.UUID
    person_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)
