"""directory people: which organisation each person id belongs to

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_people",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_people")),
    )
    with op.batch_alter_table("directory_people", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_people_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_directory_people_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("directory_people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_people_org_id"))
        batch_op.drop_index(batch_op.f("ix_directory_people_created_at"))
    op.drop_table("directory_people")
