"""The SCIM team groups (scim/groups.py): free groups an identity provider creates, renames,
fills and deletes. They grant nothing (roles are the role groups); they belong to one
organisation and hold its people. Imported by `models.py`."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from upstander.gateway.models import Model
from upstander.kit.db import IdMixin, TimestampMixin


class ScimTeam(IdMixin, TimestampMixin, Model):
    """A team group: `displayName` unique in the organisation (case-insensitively, `name_key`)."""

    __tablename__ = "scim_teams"
    __table_args__ = (
        UniqueConstraint("org_id", "name_key", name="uq_scim_teams_org_id_name_key"),
        Index("ix_scim_teams_org_id_created_at_id", "org_id", "created_at", "id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orgs.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))  # display_name stripped, lowercased
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ScimTeamMember(Model):
    """A person of the team's organisation in a team."""

    __tablename__ = "scim_team_members"

    team_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("scim_teams.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
