"""People's external references (imported by `models.py`, after its models): what another
system (an HR system, a payroll) calls a person. Unique per organisation and system; one per
system and person (identity/external_refs.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from upstander.gateway.models import Model, Person
from upstander.kit.db import IdMixin, OrgMixin, UTCDateTime


class PersonExternalRef(IdMixin, OrgMixin, Model):
    __tablename__ = "person_external_refs"
    __table_args__ = (
        UniqueConstraint("org_id", "system", "external_id"),
        UniqueConstraint("person_id", "system"),
    )

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("people.id", ondelete="CASCADE"))
    system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


# Loaded with the person (one more SELECT per page), so responses carry them.
Person.external_refs = relationship(  # type: ignore[attr-defined]
    PersonExternalRef,
    lazy="selectin",
    cascade="all, delete-orphan",
    passive_deletes=True,
    order_by=PersonExternalRef.system,
)
