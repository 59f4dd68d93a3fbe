"""people and api clients count their access changes (tokens die with access)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows start at 0, as do tokens signed before the claim existed: they stay valid
    # until the subject's first access change.
    for table in ("people", "api_clients"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("access_version", sa.Integer(), server_default="0", nullable=False)
            )
            batch_op.add_column(
                sa.Column("access_changed_at", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    for table in ("api_clients", "people"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("access_changed_at")
            batch_op.drop_column("access_version")
