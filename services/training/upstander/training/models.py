"""The training service's tables, all in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.db import (
    Base,
    IdMixin,
    OrgMixin,
    TimestampMixin,
    UTCDateTime,
    make_metadata,
)
from upstander.kit.events import event_tables
from upstander.kit.revocation import access_table


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


class CourseKind(StrEnum):
    BYSTANDER_INTERVENTION = "bystander_intervention"
    SUPERVISOR_RESPONSE = "supervisor_response"
    ANTI_HARASSMENT = "anti_harassment"
    OTHER = "other"


class Language(StrEnum):
    EN = "en"
    ES = "es"


class Course(IdMixin, OrgMixin, TimestampMixin, Model):
    """A course in an organisation's catalogue. Archived courses stay, for old completions."""

    __tablename__ = "courses"
    # The list pages by (created_at, id) within one org.
    __table_args__ = (Index("ix_courses_org_id_created_at", "org_id", "created_at", "id"),)

    title: Mapped[str] = mapped_column(String(200))
    # A plain VARCHAR, not a native enum: adding a kind later is a code change, not a migration.
    kind: Mapped[CourseKind] = mapped_column(
        Enum(
            CourseKind,
            native_enum=False,
            length=40,
            values_callable=lambda kinds: [kind.value for kind in kinds],
        ),
        index=True,
    )
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    interactive: Mapped[bool] = mapped_column(Boolean, default=False)
    # xAPI activity IRIs whose completion counts as completing this course.
    activity_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    validity_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped by SQLAlchemy on every UPDATE (optimistic concurrency); it is the ETag.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


# ----------------------------------------------------------------------------- people


class Person(OrgMixin, Model):
    """The training service's projection of a person, from `upstander.person.*` events.
    Its id is the person's id at the gateway."""

    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_org_id_created_at", "org_id", "created_at", "id"),
        # The compliance page order: leadership first, then by creation (two index ranges).
        Index(
            "ix_people_org_id_leadership_created_at",
            "org_id",
            "is_leadership",
            "created_at",
            "id",
        ),
        Index("ix_people_org_id_email", "org_id", "email"),
        Index("ix_people_org_id_manager_id", "org_id", "manager_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    is_leadership: Mapped[bool] = mapped_column(Boolean, default=False)
    # From the event (a supervisor title or flag), whether or not anyone reports to them yet.
    supervisor_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    # Derived: the flag, or someone active has them as manager. Kept current by the handlers.
    is_supervisor: Mapped[bool] = mapped_column(Boolean, default=False)
    supervisor_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    location: Mapped[str | None] = mapped_column(String(64), nullable=True)
    location_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The time of the last event applied, so an older event never overwrites a newer one.
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- requirements


class Requirement(IdMixin, OrgMixin, TimestampMixin, Model):
    """A rule: an audience must complete a course within a time, and again every so often."""

    __tablename__ = "requirements"
    __table_args__ = (
        Index("ix_requirements_org_id_created_at", "org_id", "created_at", "id"),
        UniqueConstraint("org_id", "preset_key", name="uq_requirements_org_id_preset_key"),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("courses.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # everyone | supervisors | non_supervisors | leadership | role:<role> | location:<state>
    audience: Mapped[str] = mapped_column(String(80))
    # Only people working here (a state code); null: everywhere.
    location: Mapped[str | None] = mapped_column(String(64), nullable=True)
    due_within_days: Mapped[int] = mapped_column(Integer)
    recurrence_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    min_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    interactive_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # Nobody is due before this: an organisation adopting a rule gives existing staff the
    # same time a new hire gets.
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    preset_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


class Exemption(IdMixin, OrgMixin, TimestampMixin, Model):
    """A person excused from one requirement (e.g. trained by a previous employer)."""

    __tablename__ = "exemptions"
    __table_args__ = (
        UniqueConstraint("requirement_id", "person_id", name="uq_exemptions_requirement_person"),
    )

    requirement_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("requirements.id"), index=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reason: Mapped[str] = mapped_column(String(500))
    granted_by: Mapped[str] = mapped_column(String(64))


# ----------------------------------------------------------------------------- completions


class CompletionSource(StrEnum):
    MANUAL = "manual"
    CSV = "csv"
    XAPI = "xapi"


class Completion(IdMixin, OrgMixin, TimestampMixin, Model):
    """A person completed a course. One per (person, course, completed_at): imports are
    idempotent."""

    __tablename__ = "completions"
    __table_args__ = (
        UniqueConstraint(
            "org_id", "person_id", "course_id", "completed_at", name="uq_completions_natural_key"
        ),
        Index("ix_completions_org_id_created_at", "org_id", "created_at", "id"),
        Index("ix_completions_org_id_person_id", "org_id", "person_id"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    course_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("courses.id"), index=True)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[CompletionSource] = mapped_column(
        Enum(
            CompletionSource,
            native_enum=False,
            length=16,
            values_callable=lambda sources: [source.value for source in sources],
        )
    )
    certificate_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    statement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(64))


# ----------------------------------------------------------------------------- compliance


class ComplianceItem(IdMixin, OrgMixin, TimestampMixin, Model):
    """The time-independent part of one person's compliance with one requirement or policy:
    what the engine (`compliance.engine`) concludes, minus the comparison with *now*, which
    SQL does at read time (`compliance.store.status_case`). One row per active person and
    requirement that applies to them, and per active person and policy with a published
    version. Kept current in the transaction of every change that affects it
    (`compliance.store.refresh_items`); `rebuild_compliance` recomputes an org from scratch.

    Person attributes (leadership, manager, roles, location) are not copied here: reads start
    from `people` (which also counts people with no items), so a person's move or new manager
    rewrites only the rows whose outcome changes."""

    __tablename__ = "compliance_items"
    __table_args__ = (
        # Also the (org_id, person_id) lookup of a person's items. NULLs are distinct, so a
        # policy row (requirement_id null) never collides with a course row and vice versa.
        UniqueConstraint(
            "org_id", "person_id", "requirement_id", name="uq_compliance_items_requirement"
        ),
        UniqueConstraint("org_id", "person_id", "policy_id", name="uq_compliance_items_policy"),
        # What a status needs, by person: roll-ups and the status filter read only this index.
        Index(
            "ix_compliance_items_org_id_person_id_status",
            "org_id",
            "person_id",
            "exempt",
            "completed_at",
            "valid_until",
            "due_at",
        ),
        Index("ix_compliance_items_org_id_requirement_id", "org_id", "requirement_id"),
        Index("ix_compliance_items_org_id_policy_id", "org_id", "policy_id"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(8))  # "course" | "policy"
    requirement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    course_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    policy_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    policy_version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    policy_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The deadline when nothing counts yet; when something does, when it lapses (the API's
    # `due_at` either way).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The completion (or acknowledgment) that counts: the latest qualifying one.
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When that completion lapses (recurrence or course validity); null: never.
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    exempt: Mapped[bool] = mapped_column(Boolean, default=False)


# ----------------------------------------------------------------------------- policies


class Policy(IdMixin, OrgMixin, TimestampMixin, Model):
    """A policy document everyone acknowledges; its text lives in numbered versions."""

    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_org_id_created_at", "org_id", "created_at", "id"),)

    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PolicyVersion(IdMixin, OrgMixin, TimestampMixin, Model):
    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("policy_id", "number", name="uq_policy_versions_policy_id_number"),
    )

    policy_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("policies.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    changes: Mapped[str] = mapped_column(Text, default="")
    due_days: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[str] = mapped_column(String(64))


class Acknowledgment(IdMixin, OrgMixin, TimestampMixin, Model):
    __tablename__ = "acknowledgments"
    __table_args__ = (
        UniqueConstraint("version_id", "person_id", name="uq_acknowledgments_version_person"),
        Index("ix_acknowledgments_org_id_person_id", "org_id", "person_id"),
    )

    policy_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("policies.id"), index=True)
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("policy_versions.id"))
    version_number: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- xAPI


class XapiStatement(IdMixin, OrgMixin, TimestampMixin, Model):
    """An xAPI statement as the LMS sent it, with what the LRS adds (stored time, authority,
    voided flag) and the fields the statement filters look at, lifted into columns."""

    __tablename__ = "xapi_statements"
    __table_args__ = (
        UniqueConstraint("org_id", "statement_id", name="uq_xapi_statements_org_id_statement_id"),
        # Filters page by stored time (and id, for ties) within one org.
        Index("ix_xapi_statements_org_id_stored", "org_id", "stored", "id"),
        Index("ix_xapi_statements_org_id_verb_id", "org_id", "verb_id"),
        Index("ix_xapi_statements_org_id_activity_id", "org_id", "activity_id"),
        Index("ix_xapi_statements_org_id_actor", "org_id", "actor"),
        Index("ix_xapi_statements_org_id_registration", "org_id", "registration"),
    )

    statement_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The statement exactly as received (with the id the LRS assigned, if it had none).
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    stored: Mapped[datetime] = mapped_column(UTCDateTime)
    authority: Mapped[str] = mapped_column(String(64))
    # Canonical inverse functional identifiers ("mbox:mailto:a@b.example", "account:home|name").
    actor: Mapped[str | None] = mapped_column(String(600), nullable=True)
    object_agent: Mapped[str | None] = mapped_column(String(600), nullable=True)
    verb_id: Mapped[str] = mapped_column(String(500))
    activity_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    registration: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # The statement a voiding statement voids (StatementRef), so late targets are voided too.
    voids: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    # The statement a StatementRef object points at (queries return statements that target a
    # match; migration 0004).
    object_ref: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)


# ----------------------------------------------------------------------------- reminders


class ReminderKind(StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    ACKNOWLEDGMENT_DUE = "acknowledgment_due"


class ReminderSent(IdMixin, OrgMixin, TimestampMixin, Model):
    """One reminder sent: a person is reminded of a thing once per kind and cycle (the due
    date of that cycle), however often the scheduler runs."""

    __tablename__ = "reminders_sent"
    __table_args__ = (
        UniqueConstraint(
            "person_id", "subject_id", "kind", "cycle_due_at", name="uq_reminders_sent_natural_key"
        ),
        Index("ix_reminders_sent_org_id_person_id", "org_id", "person_id"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # A requirement id (course reminders) or a policy version id (acknowledgments).
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[ReminderKind] = mapped_column(
        Enum(
            ReminderKind,
            native_enum=False,
            length=32,
            values_callable=lambda kinds: [kind.value for kind in kinds],
        )
    )
    cycle_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- events

Outbox, Inbox = event_tables(Model)
# The latest access change of each person, API client and org the gateway announced: tokens
# signed before it are refused (upstander.kit.revocation).
AccessRecord = access_table(Model)

# External references on courses and completions (migration 0005); the LRS documents,
# attachments, links and activities (migration 0004); the completion change feed
# (completions/changes.py, migration 0006).
from upstander.training.completions import change_tables as _change_tables  # noqa: E402, F401
from upstander.training.external_refs import models as external_ref_models  # noqa: E402, F401
from upstander.training.xapi import models as xapi_models  # noqa: E402, F401
