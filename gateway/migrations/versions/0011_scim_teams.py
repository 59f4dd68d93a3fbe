"""SCIM team groups (scim_teams, scim_team_members), and the SCIM attributes an identity
provider left unset on a person (people.scim_unset)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scim_teams",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_scim_teams_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_teams")),
        sa.UniqueConstraint("org_id", "name_key", name="uq_scim_teams_org_id_name_key"),
    )
    with op.batch_alter_table("scim_teams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scim_teams_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_scim_teams_org_id_created_at_id", ["org_id", "created_at", "id"], unique=False
        )
    op.create_table(
        "scim_team_members",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_scim_team_members_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["scim_teams.id"],
            name=op.f("fk_scim_team_members_team_id_scim_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "person_id", name=op.f("pk_scim_team_members")),
    )
    with op.batch_alter_table("scim_team_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scim_team_members_person_id"), ["person_id"], unique=False
        )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scim_unset", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("scim_unset")
    with op.batch_alter_table("scim_team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scim_team_members_person_id"))
    op.drop_table("scim_team_members")
    with op.batch_alter_table("scim_teams", schema=None) as batch_op:
        batch_op.drop_index("ix_scim_teams_org_id_created_at_id")
        batch_op.drop_index(batch_op.f("ix_scim_teams_created_at"))
    op.drop_table("scim_teams")
