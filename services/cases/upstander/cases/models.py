"""Every table the cases service owns, in one module that imports no domain code."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Enum, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.db import Base, IdMixin, OrgMixin, TimestampMixin, UTCDateTime, make_metadata


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


class CaseStatus(StrEnum):
    NEW = "new"
    TRIAGE = "triage"
    INVESTIGATING = "investigating"
    DECISION = "decision"
    CLOSED = "closed"
    REFERRED = "referred"
    DISMISSED = "dismissed"


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


def _enum(kind: type[StrEnum], name: str) -> Enum:
    # Stored as VARCHAR of the values (no native PostgreSQL enum): adding a state later is a
    # code change, not a type migration.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda members: [member.value for member in members],
    )


class Case(IdMixin, OrgMixin, TimestampMixin, Model):
    """A case file, opened exactly once from a report."""

    __tablename__ = "cases"
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
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledge_by: Mapped[datetime] = mapped_column(UTCDateTime)
    feedback_by: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
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
