"""The people change feed's rows (identity/people_changes.py): one per person and committed
transaction that changed them, numbered in commit order. Imported by `models.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.gateway.models import Model
from upstander.kit.db import UTCDateTime


class PersonChange(Model):
    """One committed change to a person (`created`, `updated`, `deactivated`, `deleted`),
    numbered in commit order within its organisation (`seq`; see upstander.kit.changefeed
    for why the order holds). Ids and the kind of change only: what a person is now is read
    from `people` when the feed is read."""

    __tablename__ = "people_changes"
    __table_args__ = (Index("ix_people_changes_org_id_seq", "org_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
