"""The completion change feed's rows (completions/changes.py): one per completion and
committed transaction that recorded, changed or removed it, numbered in commit order.
Imported by `upstander.training.models`, after its models."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.db import UTCDateTime
from upstander.training.models import Model


class CompletionChange(Model):
    """One committed change to a completion (`created`, `updated`, `deleted`), numbered in
    commit order within its organisation (`seq`; see upstander.kit.changefeed for why the
    order holds). Ids only: the person and course stay for a tombstone, whose completion is
    gone (voided over xAPI)."""

    __tablename__ = "completion_changes"
    __table_args__ = (Index("ix_completion_changes_org_id_seq", "org_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    completion_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    course_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
