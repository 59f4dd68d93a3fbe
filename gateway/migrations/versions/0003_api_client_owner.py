"""api clients record the person who registered them

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
    # Existing clients get no owner: their tokens carry none, and the cases service shows them
    # no case content until an admin registers a replacement (fail closed).
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_clients_created_by"), ["created_by"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_clients_created_by_people"),
            "people",
            ["created_by"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_clients_created_by_people"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_clients_created_by"))
        batch_op.drop_column("created_by")
