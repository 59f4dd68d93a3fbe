"""The notify service's tables, all in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.crypto import EncryptedText, VaultSlot, data_key_model
from upstander.kit.db import Base, IdMixin, OrgMixin, TimestampMixin, UTCDateTime, make_metadata
from upstander.kit.events import event_tables
from upstander.kit.idempotency import idempotency_table
from upstander.kit.revocation import access_table


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()
    __vault_slot__ = VaultSlot("notify")


SUBJECT_MAX = 200
BODY_MAX = 2000
KIND_MAX = 100
LINK_MAX = 2048
URL_MAX = 2048
ERROR_MAX = 300

Outbox, Inbox = event_tables(Model)
# The latest access change of each person, API client and org the gateway announced: tokens
# signed before it are refused (upstander.kit.revocation).
AccessRecord = access_table(Model)
# Responses stored for `Idempotency-Key` retries (kit.idempotency).
IdempotencyKey = idempotency_table(Model)
DataKey = data_key_model(Model)


class Channel(StrEnum):
    EMAIL = "email"
    INBOX = "inbox"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # recorded, not tried yet (emails: queued, maybe until quiet hours end)
    BATCHED = "batched"  # a reminder waiting for the person's daily digest email
    SENT = "sent"
    FAILED = "failed"  # tried, will be tried again at next_attempt_at
    DEAD = "dead"  # given up: retries exhausted, endpoint disabled, or recipient gone


# The send log's `error` of a notice taken back before it went out (status `dead`): the case
# was hidden from its recipient (`upstander.case.restricted`).
WITHDRAWN = "withdrawn"


class InboxMessage(IdMixin, OrgMixin, TimestampMixin, Model):
    """A notice in one person's in-app inbox. It says that something happened and where to
    look; it never carries case content (that stays behind the case's access checks)."""

    __tablename__ = "inbox_messages"
    # The inbox pages a person's messages newest first within one org.
    __table_args__ = (
        Index("ix_inbox_messages_org_id_person_id_created_at", "org_id", "person_id", "created_at"),
        # Withdrawal finds a case's messages to the people it was just hidden from.
        Index("ix_inbox_messages_case_id_person_id", "case_id", "person_id"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The case the message is about (case notices), so it can be withdrawn when the case is
    # hidden from its reader (`upstander.case.restricted`).
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    body: Mapped[str] = mapped_column(String(BODY_MAX), default="")
    link: Mapped[str | None] = mapped_column(String(LINK_MAX), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# ----------------------------------------------------------------------------- directory


class Org(TimestampMixin, Model):
    """Projection of the gateway's organisations (`upstander.org.*`)."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(OrgMixin, TimestampMixin, Model):
    """Projection of the gateway's staff directory (`upstander.person.*`): who gets told.
    Email and name are personal data, so they are sealed under the person's own data key."""

    __tablename__ = "people"
    __encryption_owner__ = "id"
    __table_args__ = (Index("ix_people_org_id_active", "org_id", "active"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    email: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.email"), nullable=True
    )
    name: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "person.name"), nullable=True
    )
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    is_leadership: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(16), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CaseRestriction(IdMixin, OrgMixin, TimestampMixin, Model):
    """Projection of who a case is hidden from, as cases announced it
    (`upstander.case.restricted`): they never hear about the case again, whatever a later
    event's own `restricted_person_ids` says, and their webhook endpoints get nothing of it."""

    __tablename__ = "case_restrictions"
    __table_args__ = (UniqueConstraint("case_id", "person_id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class CaseRoute(OrgMixin, TimestampMixin, Model):
    """Which group a case was routed to when it opened (`case_managers` or `reviewers`), so
    later notices about it reach the same group and never the other."""

    __tablename__ = "case_routes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # the case id
    number: Mapped[str] = mapped_column(String(64))
    routed_to: Mapped[str] = mapped_column(String(32))


# ----------------------------------------------------------------------------- deliveries


class Delivery(IdMixin, OrgMixin, TimestampMixin, Model):
    """One notification to one recipient on one channel, because of one event: the send log.
    The unique key makes a repeated event a no-op; email rows double as the queue the worker
    sends from (`next_attempt_at` is also the "not before" of quiet hours and digests).

    The recipient is a person (`person_id`), an outside endpoint (`webhook_id`), or a
    confidential reporter, whose address is never kept: only `recipient_hash` (sha256)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "person_id", "channel"),
        Index("ix_deliveries_due", "channel", "status", "next_attempt_at"),
        Index("ix_deliveries_org_id_created_at", "org_id", "created_at"),
        Index("ix_deliveries_webhook_id_event_id", "webhook_id", "event_id"),
        Index("ix_deliveries_case_id_person_id", "case_id", "person_id"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The case a case notice is about: withdrawal cancels what is still unsent.
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    webhook_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    recipient_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    # True for reminders that go out in the person's daily digest rather than one by one.
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    # Template parameters: identifiers only (case id, case number), never content.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# ----------------------------------------------------------------------------- rules


class NotificationRule(OrgMixin, TimestampMixin, Model):
    """An org's override of the rule shipped in code for an event type (or a pattern of them):
    who hears about it (`recipients`), how (`channels`), and whether it may wake people in
    their quiet hours (`urgent`). Deleting the row restores the default."""

    __tablename__ = "notification_rules"
    __table_args__ = (UniqueConstraint("org_id", "event_type"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_type: Mapped[str] = mapped_column(String(128))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Preference(OrgMixin, TimestampMixin, Model):
    """One person's choices: channels per kind of notice (case, training, policy), quiet
    hours in their own time zone, and language. Absent → the defaults."""

    __tablename__ = "preferences"
    __table_args__ = (UniqueConstraint("person_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channels: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "22:00"
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "07:00"
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


# ----------------------------------------------------------------------------- webhooks


class Webhook(OrgMixin, TimestampMixin, Model):
    """An outside system's endpoint, signed per Standard Webhooks. Secrets are sealed under
    the endpoint's own data key; the previous one stays valid until `previous_secret_expires_at`
    so a receiver can roll over."""

    __tablename__ = "webhooks"
    __encryption_owner__ = "id"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # The person who registered or last changed the endpoint (for an API client, the client's
    # owning person). Case events reach it only when that person may see the case; without an
    # owner (endpoints from before owners were kept) it gets no case events at all.
    owner_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    url: Mapped[str] = mapped_column(String(URL_MAX))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "webhook.secret"), nullable=True
    )
    previous_secret: Mapped[str | None] = mapped_column(
        EncryptedText(Model.__vault_slot__, "webhook.previous_secret"), nullable=True
    )
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    failure_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class WebhookDelivery(IdMixin, OrgMixin, TimestampMixin, Model):
    """One event for one endpoint; `message_id` (`msg_<hex>`) is its `webhook-id`, the same
    across retries and replays so receivers can deduplicate."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_created_at", "webhook_id", "created_at"),
        Index("ix_webhook_deliveries_case_id_webhook_id", "case_id", "webhook_id"),
    )

    webhook_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The case a case event is about: withdrawn when the endpoint's owner is restricted.
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    event_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def message_id(self) -> str:
        return f"msg_{self.id.hex}"


class WebhookDeliveryAttempt(IdMixin, OrgMixin, TimestampMixin, Model):
    """One try of a webhook delivery, kept for the delivery log (the delivery row holds only the
    latest state). `number` counts every try of the delivery, replays included; gone with the
    delivery (withdrawn, endpoint deleted)."""

    __tablename__ = "webhook_delivery_attempts"
    __table_args__ = (
        Index("ix_webhook_delivery_attempts_delivery_id_number", "delivery_id", "number"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    # When the request left (its `webhook-timestamp`).
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # None when the endpoint answered 2xx; otherwise `HTTP <code>`, an httpx error class name,
    # or `target not allowed` (never more, see webhooks/targets.py).
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX), nullable=True)
