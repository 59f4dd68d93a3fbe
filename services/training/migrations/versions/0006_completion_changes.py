"""the completion change feed (completion_changes): one row per completion and committed
transaction that recorded, changed or removed it, numbered in commit order; completions
already recorded enter it as created

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "completion_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("completion_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("course_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_completion_changes")),
    )
    with op.batch_alter_table("completion_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_completion_changes_completion_id"), ["completion_id"], unique=False
        )
        batch_op.create_index("ix_completion_changes_org_id_seq", ["org_id", "seq"], unique=False)
    # The completions already recorded: a sync starting from scratch finds every one.
    op.execute(
        "INSERT INTO completion_changes "
        "(org_id, completion_id, person_id, course_id, kind, changed_at) "
        "SELECT org_id, id, person_id, course_id, 'created', created_at FROM completions "
        "ORDER BY created_at, id"
    )


def downgrade() -> None:
    with op.batch_alter_table("completion_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_completion_changes_org_id_seq")
        batch_op.drop_index(batch_op.f("ix_completion_changes_completion_id"))
    op.drop_table("completion_changes")
