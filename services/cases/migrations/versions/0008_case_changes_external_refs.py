"""hr sync: the case change feed (case_changes) and external references on cases

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_case_changes")),
    )
    with op.batch_alter_table("case_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_changes_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_case_changes_org_id_seq", ["org_id", "seq"], unique=False)

    op.create_table(
        "case_external_refs",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_external_refs_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_external_refs")),
        sa.UniqueConstraint("case_id", "system", name=op.f("uq_case_external_refs_case_id_system")),
        sa.UniqueConstraint(
            "org_id",
            "system",
            "external_id",
            name=op.f("uq_case_external_refs_org_id_system_external_id"),
        ),
    )
    with op.batch_alter_table("case_external_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_external_refs_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_external_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_external_refs_org_id"))
    op.drop_table("case_external_refs")
    with op.batch_alter_table("case_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_case_changes_org_id_seq")
        batch_op.drop_index(batch_op.f("ix_case_changes_case_id"))
    op.drop_table("case_changes")
