"""event dead letters and pruning: inbox rows keep a status and a reason; received_at indexed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every id already in the inbox took effect: `processed`. An event that can never
    # succeed is kept `dead` with its reason (upstander.kit.events); ids are pruned by age.
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="processed", nullable=False)
        )
        batch_op.add_column(sa.Column("reason", sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f("ix_inbox_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_received_at"))
        batch_op.drop_column("reason")
        batch_op.drop_column("status")
