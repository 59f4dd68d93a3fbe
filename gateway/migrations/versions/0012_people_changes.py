"""the people change feed (people_changes): one row per person and committed transaction that
changed them, numbered in commit order; existing people enter it as created (or deleted)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "people_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_people_changes")),
    )
    with op.batch_alter_table("people_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_people_changes_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index("ix_people_changes_org_id_seq", ["org_id", "seq"], unique=False)
    # The people already there: a sync starting from scratch finds everyone.
    op.execute(
        "INSERT INTO people_changes (org_id, person_id, kind, changed_at) "
        "SELECT org_id, id, CASE WHEN scim_deleted_at IS NULL THEN 'created' ELSE 'deleted' END, "
        "updated_at FROM people ORDER BY created_at, id"
    )


def downgrade() -> None:
    with op.batch_alter_table("people_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_people_changes_org_id_seq")
        batch_op.drop_index(batch_op.f("ix_people_changes_person_id"))
    op.drop_table("people_changes")
