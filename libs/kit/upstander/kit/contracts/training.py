"""Contracts of the training service's events (consumed by notify, which tells the people
named and forwards them to outside webhooks): reminders about courses and policies. Ids,
a version number and due dates only."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from upstander.kit.contracts.base import EventData, EventTime, Part
from upstander.kit.contracts.registry import contract


class CourseReminder(EventData):
    person_id: uuid.UUID
    requirement_id: uuid.UUID
    course_id: uuid.UUID
    due_at: EventTime


@contract("upstander.training.due_soon", 1)
class TrainingDueSoon(CourseReminder):
    """A course deadline (first, or renewal when the last completion lapses) is within the
    reminder window; once per person, requirement and cycle."""


@contract("upstander.training.overdue", 1)
class TrainingOverdue(CourseReminder):
    """The deadline passed (never done, or lapsed); once per person, requirement and cycle."""


class OverdueCourse(Part):
    person_id: uuid.UUID
    course_id: uuid.UUID


@contract("upstander.training.supervisor_digest", 1)
class SupervisorDigest(EventData):
    """A direct report newly became overdue: every overdue course of the supervisor's direct
    reports."""

    supervisor_id: uuid.UUID
    overdue: list[OverdueCourse] = Field(default_factory=list, max_length=100_000)


@contract("upstander.policy.version_published", 1)
class PolicyVersionPublished(EventData):
    """A new version of a policy everyone in its audience must acknowledge (people are told
    by the per-person `policy.acknowledgment_due`; webhooks receive this)."""

    policy_id: uuid.UUID
    org_id: uuid.UUID | None = None
    title: str = Field(max_length=200)
    version: int = Field(ge=1, description="The version's number (1, 2, ...).")
    due_days: int = Field(ge=0, description="Days each person has to acknowledge it.")


@contract("upstander.policy.acknowledgment_due", 1)
class PolicyAcknowledgmentDue(EventData):
    """A published version awaits the person's acknowledgment; once per person and version."""

    person_id: uuid.UUID
    policy_id: uuid.UUID
    policy_version: int = Field(ge=1)
    due_at: EventTime


@contract("upstander.policy.acknowledged", 1)
class PolicyAcknowledged(EventData):
    """A person acknowledged a version of a policy; once per person and version. Ids, the
    version number and the time only."""

    acknowledgment_id: uuid.UUID
    person_id: uuid.UUID
    policy_id: uuid.UUID
    version: int = Field(ge=1, description="The version acknowledged (1, 2, ...).")
    acknowledged_at: EventTime


@contract("upstander.training.completed", 1)
class TrainingCompleted(EventData):
    """A person completed a course (recorded by hand, imported from CSV, or from an xAPI
    statement); once per completion. Ids, a time and how it was recorded: never a score."""

    completion_id: uuid.UUID
    person_id: uuid.UUID
    course_id: uuid.UUID
    completed_at: EventTime
    source: Literal["manual", "csv", "xapi"] = Field(examples=["manual"])
