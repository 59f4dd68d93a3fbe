"""Tables of external references (imported by `upstander.training.models`, after its models):
what another system (an HR system, an LMS) calls a course or a completion. Unique per
organisation and system; one per system and object."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from upstander.kit.db import IdMixin, OrgMixin, UTCDateTime
from upstander.training.models import Completion, Course, Model


class CourseExternalRef(IdMixin, OrgMixin, Model):
    __tablename__ = "course_external_refs"
    __table_args__ = (
        UniqueConstraint("org_id", "system", "external_id"),
        UniqueConstraint("course_id", "system"),
    )

    course_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("courses.id", ondelete="CASCADE"))
    system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


class CompletionExternalRef(IdMixin, OrgMixin, Model):
    __tablename__ = "completion_external_refs"
    __table_args__ = (
        UniqueConstraint("org_id", "system", "external_id"),
        UniqueConstraint("completion_id", "system"),
    )

    completion_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("completions.id", ondelete="CASCADE")
    )
    system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


# Loaded with their course or completion (one more SELECT per page), so responses carry them.
Course.external_refs = relationship(  # type: ignore[attr-defined]
    CourseExternalRef,
    lazy="selectin",
    cascade="all, delete-orphan",
    passive_deletes=True,
    order_by=CourseExternalRef.system,
)
Completion.external_refs = relationship(  # type: ignore[attr-defined]
    CompletionExternalRef,
    lazy="selectin",
    cascade="all, delete-orphan",
    passive_deletes=True,
    order_by=CompletionExternalRef.system,
)
