"""investigation evidence and custody

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_items",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.LargeBinary(), nullable=True),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(), nullable=True),
        sa.Column("description", sa.LargeBinary(), nullable=True),
        sa.Column("source", sa.LargeBinary(), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by_kind", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by_id", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_evidence_items_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_items")),
    )
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evidence_items_case_id_created_at_id",
            ["case_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_items_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_evidence_items_org_id"), ["org_id"], unique=False)

    op.create_table(
        "evidence_chunks",
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_evidence_chunks_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_evidence_chunks_evidence_id_evidence_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_chunks")),
        sa.UniqueConstraint("evidence_id", "seq", name=op.f("uq_evidence_chunks_evidence_id_seq")),
    )
    with op.batch_alter_table("evidence_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_chunks_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_chunks_org_id"), ["org_id"], unique=False)

    op.create_table(
        "evidence_custody",
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "uploaded",
                "viewed",
                "downloaded",
                "exported",
                name="custody_action",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=200), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_evidence_custody_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence_items.id"],
            name=op.f("fk_evidence_custody_evidence_id_evidence_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_custody")),
    )
    with op.batch_alter_table("evidence_custody", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evidence_custody_case_id_created_at_id",
            ["case_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_custody_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            "ix_evidence_custody_evidence_id_created_at_id",
            ["evidence_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_evidence_custody_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_custody", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_custody_org_id"))
        batch_op.drop_index("ix_evidence_custody_evidence_id_created_at_id")
        batch_op.drop_index(batch_op.f("ix_evidence_custody_created_at"))
        batch_op.drop_index("ix_evidence_custody_case_id_created_at_id")

    op.drop_table("evidence_custody")
    with op.batch_alter_table("evidence_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_chunks_org_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_chunks_case_id"))

    op.drop_table("evidence_chunks")
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_items_org_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_items_created_at"))
        batch_op.drop_index("ix_evidence_items_case_id_created_at_id")

    op.drop_table("evidence_items")
