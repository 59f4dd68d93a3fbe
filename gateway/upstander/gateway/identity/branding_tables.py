"""The reporter page's per-organisation branding (web/branding.py): a display name, colours
checked for contrast, a logo the platform stores (a sanitised PNG, never a link to another
site) and the origins allowed to frame the page. Imported by `models.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.gateway.models import Model
from upstander.kit.db import UTCDateTime


class OrgBranding(Model):
    """One row per organisation that changed its page's look (none: the platform's)."""

    __tablename__ = "org_branding"

    org_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    accent: Mapped[str | None] = mapped_column(String(7), nullable=True)
    header_background: Mapped[str | None] = mapped_column(String(7), nullable=True)
    header_text: Mapped[str | None] = mapped_column(String(7), nullable=True)
    frame_ancestors: Mapped[list[str]] = mapped_column(JSON, default=list)
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    logo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
