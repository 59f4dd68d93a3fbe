"""The organisations API's table: one-time invitations that let an organisation's first admin
(or a later one an operator invites) set their password. Imported by `models.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.gateway.models import Model
from upstander.kit.db import IdMixin, TimestampMixin, UTCDateTime


class OrgInvitation(IdMixin, TimestampMixin, Model):
    """A link to set a password, sent to one person: only its SHA-256 is kept (the token has
    256 bits, so a fast hash is enough), it expires, and it works once (`used_at`). Issuing a
    new one for the same person revokes the ones before (`revoked_at`)."""

    __tablename__ = "org_invitations"

    org_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Who invited: the operator client's id.
    invited_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
