"""Tables of HR sync (imported by `upstander.cases.models`, after its `Model`): the change
feed's rows and the external references an HR system gives cases."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.cases.models import Model
from upstander.kit.db import IdMixin, OrgMixin, UTCDateTime


class CaseChange(Model):
    """One committed change to a case (`created`, `updated`), numbered in commit order within
    its organisation (`seq`; see sync.changes for why the order holds). Rows hold ids and the
    kind of change only, never content; they outlive the case (retention keeps numbers)."""

    __tablename__ = "case_changes"
    __table_args__ = (Index("ix_case_changes_org_id_seq", "org_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseExternalRef(IdMixin, OrgMixin, Model):
    """What another system (an HR system, a ticketing tool) calls a case: unique per
    organisation and system, one per system and case."""

    __tablename__ = "case_external_refs"
    __table_args__ = (
        UniqueConstraint("org_id", "system", "external_id"),
        UniqueConstraint("case_id", "system"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
