"""Every table the cases service owns, in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from upstander.kit.crypto import (
    EncryptedBytes,
    EncryptedJSON,
    EncryptedText,
    VaultSlot,
    data_key_model,
)
from upstander.kit.db import Base, IdMixin, OrgMixin, TimestampMixin, UTCDateTime, make_metadata
from upstander.kit.events import event_tables
from upstander.kit.idempotency import idempotency_table
from upstander.kit.revocation import access_table


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()
    # Where the encrypted column types find this service's Vault (attached at startup).
    __vault_slot__ = VaultSlot("cases")


Outbox, Inbox = event_tables(Model)
# The latest access change of each person, API client and org the gateway announced: tokens
# signed before it are refused (upstander.kit.revocation).
AccessRecord = access_table(Model)
# Responses stored for `Idempotency-Key` retries (kit.idempotency).
IdempotencyKey = idempotency_table(Model)
DataKey = data_key_model(Model)


class CaseStatus(StrEnum):
    NEW = "new"
    TRIAGE = "triage"
    INVESTIGATING = "investigating"
    DECISION = "decision"
    CLOSED = "closed"
    REFERRED = "referred"
    DISMISSED = "dismissed"
    # A tombstone left by the retention pass: the content is shredded, only the number stays.
    DELETED = "deleted"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ReporterMode(StrEnum):
    ANONYMOUS = "anonymous"
    CONFIDENTIAL = "confidential"
    IDENTIFIED = "identified"


class RestrictionReason(StrEnum):
    INVOLVED = "involved"  # named in the report (or an allegation) as involved
    EXCLUDED = "excluded"  # the reporter asked that they never see the case
    CHAIN = "chain"  # above an involved person in the reporting chain
    RECUSED = "recused"  # a handler stepped away from the case


class RoutedTo(StrEnum):
    """Who handles a case by default: the org's case managers, or (when someone involved is
    leadership or above a case manager) independent reviewers only."""

    CASE_MANAGERS = "case_managers"
    REVIEWERS = "reviewers"


class ReferralTarget(StrEnum):
    POLICE = "police"
    OUTSIDE_COUNSEL = "outside_counsel"
    PARTY = "party"  # the political party (or parent organisation) the campaign answers to
    OTHER = "other"


class Outcome(StrEnum):
    CORRECTIVE_ACTION = "corrective_action"
    NO_ACTION = "no_action"
    RESOLVED_INFORMALLY = "resolved_informally"
    OTHER = "other"


class Finding(StrEnum):
    SUBSTANTIATED = "substantiated"
    NOT_SUBSTANTIATED = "not_substantiated"
    INCONCLUSIVE = "inconclusive"


class AssignmentRole(StrEnum):
    INVESTIGATOR = "investigator"
    CASE_MANAGER = "case_manager"
    REVIEWER = "reviewer"


class LinkKind(StrEnum):
    SAME_SUBJECT = "same_subject"
    RETALIATION_FOLLOW_UP = "retaliation_follow_up"


class MeasureKind(StrEnum):
    NO_CONTACT = "no_contact"
    SCHEDULE_CHANGE = "schedule_change"
    REPORTING_LINE_CHANGE = "reporting_line_change"
    LEAVE = "leave"
    REMOTE_WORK = "remote_work"
    OTHER = "other"


class MeasureAffects(StrEnum):
    SUBJECT = "subject"
    REPORTER = "reporter"
    OTHER = "other"


class DeadlineKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    FEEDBACK = "feedback"
    ACTION = "action"


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class NoticeKind(StrEnum):
    APPROACHING = "approaching"
    MISSED = "missed"


class JurisdictionPreset(StrEnum):
    EU_DIRECTIVE = "eu_directive"


class AuthorKind(StrEnum):
    REPORTER = "reporter"
    HANDLER = "handler"
    SYSTEM = "system"


def _enum(kind: type[StrEnum], name: str) -> Enum:
    # Stored as VARCHAR of the values (no native PostgreSQL enum): adding a state later is a
    # code change, not a type migration.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


class Case(IdMixin, OrgMixin, TimestampMixin, Model):
    """A case file, opened exactly once from a report (or from a reporter's retaliation
    check-in). Past retention it becomes a tombstone: status `deleted`, its data key destroyed,
    every row hanging off it deleted, only the number and the dates kept."""

    __tablename__ = "cases"
    # The legal hold's reason is sealed under the case's own key.
    __encryption_owner__ = "id"
    __table_args__ = (
        UniqueConstraint("org_id", "number", name="uq_cases_org_id_number"),
        UniqueConstraint("org_id", "report_id", name="uq_cases_org_id_report_id"),
        Index("ix_cases_org_id_created_at_id", "org_id", "created_at", "id"),
        Index("ix_cases_org_id_status_created_at_id", "org_id", "status", "created_at", "id"),
    )

    # No single-column index: the composite indexes above lead with org_id.
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus, "case_status"), default=CaseStatus.NEW
    )
    severity: Mapped[Severity | None] = mapped_column(
        _enum(Severity, "case_severity"), nullable=True
    )
    priority: Mapped[Priority] = mapped_column(
        _enum(Priority, "case_priority"), default=Priority.NORMAL
    )
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    report_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reporter_mode: Mapped[ReporterMode] = mapped_column(
        _enum(ReporterMode, "reporter_mode"), default=ReporterMode.ANONYMOUS
    )
    # Only for identified reports: the reporter's directory id.
    reporter_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledge_by: Mapped[datetime] = mapped_column(UTCDateTime)
    feedback_by: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    routed_to: Mapped[RoutedTo] = mapped_column(
        _enum(RoutedTo, "case_routed_to"), default=RoutedTo.CASE_MANAGERS
    )
    referred_to: Mapped[ReferralTarget | None] = mapped_column(
        _enum(ReferralTarget, "referral_target"), nullable=True
    )
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "case_outcome"), nullable=True)
    # When the reporter was told what is being done (a feedback message, or given elsewhere).
    feedback_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A legal hold keeps the case past its retention period until it is lifted.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    legal_hold_reason: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case.legal_hold_reason"), nullable=True
    )
    legal_hold_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The ETag; SQLAlchemy bumps it on every UPDATE and checks it (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class CaseCounter(Model):
    """The last case number given per organisation and year. Incremented with an UPSERT in the
    transaction that opens the case, so numbers are gap-free and never handed out twice."""

    __tablename__ = "case_counters"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


# ----------------------------------------------------------------------------- the report


class CaseReport(IdMixin, OrgMixin, TimestampMixin, Model):
    """What the reporter told us, sealed under the case's data key: description, people
    involved, witnesses, desired outcome, reporter contact, language. Kept apart from `cases`
    so listing cases never decrypts (or even loads) report content."""

    __tablename__ = "case_reports"
    __encryption_owner__ = "case_id"

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), unique=True
    )
    # None once the case's data key is destroyed (crypto-shredded).
    content: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(Model.__vault_slot__, "case_report.content"), nullable=True
    )


class CaseAttachment(IdMixin, OrgMixin, TimestampMixin, Model):
    """Metadata of a file the reporter attached (the file itself stays with intake). The
    filename can name people, so it is sealed under the case's data key."""

    __tablename__ = "case_attachments"
    __encryption_owner__ = "case_id"
    __table_args__ = (UniqueConstraint("case_id", "attachment_id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    attachment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    filename: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_attachment.filename"), nullable=True
    )
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)


class CaseRestriction(IdMixin, OrgMixin, Model):
    """A person who must never see the case nor hear about it, whatever their role. Rows are
    only ever added: a case once hidden from someone stays hidden."""

    __tablename__ = "case_restrictions"
    # Leads with (case_id, person_id): the NOT EXISTS of every visibility check.
    __table_args__ = (UniqueConstraint("case_id", "person_id", "reason"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    reason: Mapped[RestrictionReason] = mapped_column(
        _enum(RestrictionReason, "restriction_reason")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- conversation


class Message(IdMixin, OrgMixin, TimestampMixin, Model):
    """One message of the two-way conversation between the reporter and the case's handlers,
    sealed under the case's data key."""

    __tablename__ = "messages"
    __encryption_owner__ = "case_id"
    __table_args__ = (Index("ix_messages_case_id_created_at_id", "case_id", "created_at", "id"),)

    # No single-column index: the composite one leads with it.
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    author_kind: Mapped[AuthorKind] = mapped_column(_enum(AuthorKind, "author_kind"))
    # The handler who wrote it (None for the reporter, the system, or an API client).
    author_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    body: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "message.body"), nullable=True
    )
    # A handler's message that tells the reporter what is being done (Directive Art. 9 feedback).
    is_feedback: Mapped[bool] = mapped_column(Boolean, default=False)


# ----------------------------------------------------------------------------- directory


class Org(TimestampMixin, Model):
    """Projection of the gateway's organisations (`upstander.org.*`): the slug numbers cases."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the org id
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(OrgMixin, TimestampMixin, Model):
    """Projection of the gateway's staff directory (`upstander.person.*`): reporting lines for
    the chain of command. Email, name and title are sealed under the person's own data key."""

    __tablename__ = "people"
    __encryption_owner__ = "id"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the person id
    email: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.email"), nullable=True
    )
    name: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.name"), nullable=True
    )
    title: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.title"), nullable=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    is_leadership: Mapped[bool] = mapped_column(Boolean, default=False)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# ----------------------------------------------------------------------------- workflow


class CaseTransition(IdMixin, OrgMixin, Model):
    """One move of a case through its workflow: who, when, from where to where, and why (the
    reason sealed under the case's key). Rows are only ever added."""

    __tablename__ = "case_transitions"
    __encryption_owner__ = "case_id"
    # One position per case (the case row is locked while a transition is written).
    __table_args__ = (UniqueConstraint("case_id", "position"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, "case_status"))
    to_status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, "case_status"))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_transition.reason"), nullable=True
    )
    referred_to: Mapped[ReferralTarget | None] = mapped_column(
        _enum(ReferralTarget, "referral_target"), nullable=True
    )
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "case_outcome"), nullable=True)
    feedback_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Allegation(IdMixin, OrgMixin, TimestampMixin, Model):
    """One allegation of a case and its finding. The description and the finding's rationale
    are sealed under the case's key; the finding's author is kept for separation of duties."""

    __tablename__ = "allegations"
    __encryption_owner__ = "case_id"
    __table_args__ = (Index("ix_allegations_case_id_created_at_id", "case_id", "created_at", "id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "allegation.description"), nullable=True
    )
    subject_person_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    finding: Mapped[Finding | None] = mapped_column(_enum(Finding, "finding"), nullable=True)
    rationale: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "allegation.rationale"), nullable=True
    )
    finding_by_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    finding_by_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    finding_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CaseAssignment(IdMixin, OrgMixin, Model):
    """A person designated to handle a case in a role; they see the case while assigned."""

    __tablename__ = "case_assignments"
    __table_args__ = (UniqueConstraint("case_id", "person_id", "role"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    role: Mapped[AssignmentRole] = mapped_column(_enum(AssignmentRole, "assignment_role"))
    assigned_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseShare(IdMixin, OrgMixin, Model):
    """A reviewer let someone see a case routed to reviewers (conflict rules still apply)."""

    __tablename__ = "case_shares"
    __table_args__ = (UniqueConstraint("case_id", "person_id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    shared_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseLink(IdMixin, OrgMixin, Model):
    """Two cases that belong together (one row per pair, read in both directions)."""

    __tablename__ = "case_links"
    __table_args__ = (UniqueConstraint("case_id", "linked_case_id", "kind"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    linked_case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[LinkKind] = mapped_column(_enum(LinkKind, "link_kind"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InterimMeasure(IdMixin, OrgMixin, TimestampMixin, Model):
    """A protective measure while the case runs; its notes are sealed under the case's key."""

    __tablename__ = "interim_measures"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_interim_measures_case_id_created_at_id", "case_id", "created_at", "id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[MeasureKind] = mapped_column(_enum(MeasureKind, "measure_kind"))
    affects: Mapped[MeasureAffects] = mapped_column(_enum(MeasureAffects, "measure_affects"))
    reporter_consented: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    approved_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    notes: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "interim_measure.notes"), nullable=True
    )
    created_by: Mapped[str] = mapped_column(String(200))


class CorrectiveAction(IdMixin, OrgMixin, TimestampMixin, Model):
    """Something the case's outcome requires to be done by a date (a deadline of its own)."""

    __tablename__ = "corrective_actions"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_corrective_actions_case_id_created_at_id", "case_id", "created_at", "id"),
        Index("ix_corrective_actions_status_due_at", "status", "due_at"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    description: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "corrective_action.description"), nullable=True
    )
    owner_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ActionStatus] = mapped_column(
        _enum(ActionStatus, "action_status"), default=ActionStatus.OPEN
    )
    # Set when the action is done (not when it is cancelled).
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    # The action's ETag (`If-Match` on PATCH).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


# ----------------------------------------------------------------------------- deadlines


class CaseSettings(Model):
    """An organisation's deadlines: it may only shorten the legal ones (7 days, 3 months)."""

    __tablename__ = "case_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    acknowledge_days: Mapped[int] = mapped_column(Integer, default=7)
    feedback_months: Mapped[int] = mapped_column(Integer, default=3)
    jurisdiction_preset: Mapped[JurisdictionPreset] = mapped_column(
        _enum(JurisdictionPreset, "jurisdiction_preset"), default=JurisdictionPreset.EU_DIRECTIVE
    )
    # Days after closing on which the reporter is asked about retaliation.
    checkin_offsets_days: Mapped[list[int]] = mapped_column(JSON, default=lambda: [30, 90])
    # How long a finished case is kept (California's 4 years, the longest that applies).
    retention_days_after_close: Mapped[int] = mapped_column(Integer, default=1461)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))


class DeadlineNotice(IdMixin, OrgMixin, Model):
    """A deadline warning or miss already announced: the unique key makes each fire once."""

    __tablename__ = "deadline_notices"
    __table_args__ = (
        UniqueConstraint(
            "subject_id", "deadline", "kind", "due_at", name="uq_deadline_notices_once"
        ),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    # The case for acknowledge/feedback deadlines, the corrective action for action ones.
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    deadline: Mapped[DeadlineKind] = mapped_column(_enum(DeadlineKind, "deadline_kind"))
    kind: Mapped[NoticeKind] = mapped_column(_enum(NoticeKind, "notice_kind"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- check-ins


class RetaliationCheckin(IdMixin, OrgMixin, TimestampMixin, Model):
    """A question put to the reporter some days after their case closed: have they faced
    retaliation? One per case, closing and offset (a reopened and re-closed case is asked
    again). The answer's details are sealed under the case's key."""

    __tablename__ = "retaliation_checkins"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        UniqueConstraint(
            "case_id", "case_closed_at", "offset_days", name="uq_retaliation_checkins_once"
        ),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    case_closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    offset_days: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retaliation: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    details: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "retaliation_checkin.details"), nullable=True
    )
    # The case a "yes" opened (linked `retaliation_follow_up`).
    follow_up_case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


# ----------------------------------------------------------------------------- audit


class AuditHead(Model):
    """The head of an organisation's audit chain: locked to append, so appends serialise."""

    __tablename__ = "audit_heads"

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(IdMixin, OrgMixin, Model):
    """Who read or changed what, hash-chained per organisation. Append-only."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("org_id", "seq", name="uq_audit_entries_org_id_seq"),
        Index("ix_audit_entries_case_id", "case_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# ------------------------------------------------------------ reporter attachments and identity


class AttachmentFileStatus(StrEnum):
    PENDING = "pending"  # the bytes are still with intake; the fetcher will bring them
    STORED = "stored"  # sealed here, in chunks
    UNAVAILABLE = "unavailable"  # intake no longer has them (its report was shredded)


class CaseAttachmentFile(IdMixin, OrgMixin, TimestampMixin, Model):
    """Where the bytes of one reporter attachment stand: pending while intake still holds
    them (the attachment fetcher retries with backoff), then stored here in chunks sealed
    under the case's key. Deleted with its `CaseAttachment` (foreign key cascade)."""

    __tablename__ = "case_attachment_files"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_case_attachment_files_status_next_attempt_at", "status", "next_attempt_at"),
    )

    case_attachment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("case_attachments.id", ondelete="CASCADE"), unique=True
    )
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[AttachmentFileStatus] = mapped_column(
        _enum(AttachmentFileStatus, "attachment_file_status"), default=AttachmentFileStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Failed answers that say the file is gone (404), as opposed to intake being unreachable.
    gone_answers: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Another fetcher (replica) holds the row until then.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A short reason code ("HTTP 503", "size_mismatch"), never content.
    last_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # Sealed: a file's hash can confirm that a known photo is in the case.
    sha256: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_attachment_file.sha256"), nullable=True
    )
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CaseAttachmentChunk(IdMixin, OrgMixin, Model):
    """One piece (at most 1 MiB) of a stored attachment, sealed under the case's key, so a
    download streams piece by piece and crypto-shredding the case shreds its files."""

    __tablename__ = "case_attachment_chunks"
    __encryption_owner__ = "case_id"
    __table_args__ = (UniqueConstraint("case_attachment_id", "seq"),)

    # No single-column index: the unique constraint leads with it.
    case_attachment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("case_attachments.id", ondelete="CASCADE")
    )
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes | None] = mapped_column(
        EncryptedBytes(Model.__vault_slot__, "case_attachment_chunk.data"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReporterIdentityRead(IdMixin, OrgMixin, Model):
    """Someone read a confidential reporter's identity: who, when, and why (the reason
    sealed under the case's key; the audit entry holds only this row's id). Deleted with
    the case's report (foreign key cascade)."""

    __tablename__ = "reporter_identity_reads"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_reporter_identity_reads_case_id_created_at", "case_id", "created_at"),
    )

    # No single-column index on case_id: the composite one leads with it.
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    case_report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("case_reports.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    reason: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "reporter_identity_read.reason"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------- investigation: notes and interviews


class InterviewRole(StrEnum):
    """In which capacity someone was interviewed. Every role gets the same fields: the
    respondent's side is recorded as thoroughly as the reporter's."""

    REPORTER = "reporter"
    WITNESS = "witness"
    RESPONDENT = "respondent"
    OTHER = "other"


class CaseNote(IdMixin, OrgMixin, TimestampMixin, Model):
    """An investigation note on a case. Never edited in place: its text lives in
    `CaseNoteVersion` rows, the last one current, every earlier one kept and readable."""

    __tablename__ = "case_notes"
    __encryption_owner__ = "case_id"
    __table_args__ = (Index("ix_case_notes_case_id_created_at_id", "case_id", "created_at", "id"),)

    # No single-column index: the composite one leads with it.
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    # Who wrote the first version: "person" and a directory id, or "client" and a client id.
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(200))
    # The number of the current (last) version; versions are numbered from 1.
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    # Loaded explicitly (selectinload), never lazily: async sessions cannot lazy-load.
    versions: Mapped[list[CaseNoteVersion]] = relationship(
        lazy="raise",
        order_by="CaseNoteVersion.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class CaseNoteVersion(IdMixin, OrgMixin, TimestampMixin, Model):
    """One version of a note's text, sealed under the case's key, with who wrote it, when,
    and (for a correction) why. Rows are only ever added."""

    __tablename__ = "case_note_versions"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        UniqueConstraint("note_id", "number"),
        Index("ix_case_note_versions_case_id_created_at_id", "case_id", "created_at", "id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    # No single-column index: the unique constraint leads with it.
    note_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("case_notes.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(200))
    # None once the case's data key is destroyed (crypto-shredded).
    body: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_note_version.body"), nullable=True
    )
    reason: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_note_version.reason"), nullable=True
    )


class CaseInterview(IdMixin, OrgMixin, TimestampMixin, Model):
    """An interview held for a case. Corrected like a note: each correction is a new
    `CaseInterviewVersion` restating the whole record, earlier versions kept and readable."""

    __tablename__ = "case_interviews"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_case_interviews_case_id_created_at_id", "case_id", "created_at", "id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    # Who recorded it first: "person" and a directory id, or "client" and a client id.
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(200))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    versions: Mapped[list[CaseInterviewVersion]] = relationship(
        lazy="raise",
        order_by="CaseInterviewVersion.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class CaseInterviewVersion(IdMixin, OrgMixin, TimestampMixin, Model):
    """One version of an interview record. Who was interviewed, who else attended, the
    summary, the statement and the correction's reason are sealed under the case's key (the
    interviewee's directory id too: that someone was questioned as a respondent is itself
    sensitive, and must not outlive the case's key). Rows are only ever added."""

    __tablename__ = "case_interview_versions"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        UniqueConstraint("interview_id", "number"),
        Index("ix_case_interview_versions_case_id_created_at_id", "case_id", "created_at", "id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    interview_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("case_interviews.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[InterviewRole] = mapped_column(_enum(InterviewRole, "interview_role"))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # {"person_id": str | None, "name": str | None}: a directory person or a free-text name.
    interviewee: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(Model.__vault_slot__, "case_interview_version.interviewee"), nullable=True
    )
    # Directory ids of the handlers who held the interview.
    interviewer_person_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"person_ids": [str, ...], "names": [str, ...]}: who else was in the room.
    attendees: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON(Model.__vault_slot__, "case_interview_version.attendees"), nullable=True
    )
    summary: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_interview_version.summary"), nullable=True
    )
    statement: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_interview_version.statement"), nullable=True
    )
    # Ids of the case's evidence items attached to the interview.
    evidence_item_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "case_interview_version.reason"), nullable=True
    )


# ---------------------------------------------------------- investigation: evidence and custody


class CustodyAction(StrEnum):
    """What was done with a piece of evidence (one chain-of-custody entry each)."""

    UPLOADED = "uploaded"
    VIEWED = "viewed"  # its metadata was read (alone or in a listing)
    DOWNLOADED = "downloaded"
    EXPORTED = "exported"  # it went into a case-file export


class EvidenceItem(IdMixin, OrgMixin, TimestampMixin, Model):
    """A file a handler added to the investigation, with where it came from and when it was
    collected. The bytes live in `evidence_chunks`; the filename, description, source and
    even the hash are sealed under the case's key (a hash can confirm that a known photo is
    in the case), so crypto-shredding the case leaves nothing readable."""

    __tablename__ = "evidence_items"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_evidence_items_case_id_created_at_id", "case_id", "created_at", "id"),
    )

    # No single-column index: the composite one leads with it.
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    filename: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "evidence_item.filename"), nullable=True
    )
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "evidence_item.sha256"), nullable=True
    )
    description: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "evidence_item.description"), nullable=True
    )
    source: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "evidence_item.source"), nullable=True
    )
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by_kind: Mapped[str] = mapped_column(String(16))
    uploaded_by_id: Mapped[str] = mapped_column(String(200))


class EvidenceChunk(IdMixin, OrgMixin, Model):
    """One piece (at most 1 MiB) of an evidence file, sealed under the case's key, so uploads
    and downloads stream piece by piece. Written once, never updated."""

    __tablename__ = "evidence_chunks"
    __encryption_owner__ = "case_id"
    __table_args__ = (UniqueConstraint("evidence_id", "seq"),)

    # No single-column index: the unique constraint leads with it.
    evidence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("evidence_items.id", ondelete="CASCADE")
    )
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes | None] = mapped_column(
        EncryptedBytes(Model.__vault_slot__, "evidence_chunk.data"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvidenceCustody(IdMixin, OrgMixin, TimestampMixin, Model):
    """One link of an item's chain of custody: who (actor kind and id) did what with it, and
    when, with an optional note sealed under the case's key. Rows are only ever added."""

    __tablename__ = "evidence_custody"
    __encryption_owner__ = "case_id"
    __table_args__ = (
        Index("ix_evidence_custody_evidence_id_created_at_id", "evidence_id", "created_at", "id"),
        Index("ix_evidence_custody_case_id_created_at_id", "case_id", "created_at", "id"),
    )

    # No single-column indexes: the composite ones lead with them.
    evidence_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("evidence_items.id", ondelete="CASCADE")
    )
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    action: Mapped[CustodyAction] = mapped_column(_enum(CustodyAction, "custody_action"))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "evidence_custody.note"), nullable=True
    )


# HR sync: the case change feed and external references (their own module).
from upstander.cases.sync.models import CaseChange, CaseExternalRef  # noqa: E402, F401
