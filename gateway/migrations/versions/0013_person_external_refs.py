"""people's external references (person_external_refs): what an HR system calls a person,
unique per organisation and system, one per system and person

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_external_refs",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_person_external_refs_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_external_refs")),
        sa.UniqueConstraint(
            "org_id",
            "system",
            "external_id",
            name=op.f("uq_person_external_refs_org_id_system_external_id"),
        ),
        sa.UniqueConstraint(
            "person_id", "system", name=op.f("uq_person_external_refs_person_id_system")
        ),
    )
    with op.batch_alter_table("person_external_refs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_external_refs_org_id"), ["org_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("person_external_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_external_refs_org_id"))
    op.drop_table("person_external_refs")
