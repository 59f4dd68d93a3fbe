"""reporter attachments and identity

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:30:00.000000
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_attachment_files",
        sa.Column("case_attachment_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "stored",
                "unavailable",
                name="attachment_file_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("gone_answers", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_attachment_id"],
            ["case_attachments.id"],
            name=op.f("fk_case_attachment_files_case_attachment_id_case_attachments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_attachment_files_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachment_files")),
        sa.UniqueConstraint(
            "case_attachment_id", name=op.f("uq_case_attachment_files_case_attachment_id")
        ),
    )
    with op.batch_alter_table("case_attachment_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_attachment_files_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_case_attachment_files_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_case_attachment_files_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index(
            "ix_case_attachment_files_status_next_attempt_at",
            ["status", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "case_attachment_chunks",
        sa.Column("case_attachment_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_attachment_id"],
            ["case_attachments.id"],
            name=op.f("fk_case_attachment_chunks_case_attachment_id_case_attachments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_attachment_chunks_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_attachment_chunks")),
        sa.UniqueConstraint(
            "case_attachment_id",
            "seq",
            name=op.f("uq_case_attachment_chunks_case_attachment_id_seq"),
        ),
    )
    with op.batch_alter_table("case_attachment_chunks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_attachment_chunks_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_case_attachment_chunks_org_id"), ["org_id"], unique=False
        )

    op.create_table(
        "reporter_identity_reads",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("case_report_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_reporter_identity_reads_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_report_id"],
            ["case_reports.id"],
            name=op.f("fk_reporter_identity_reads_case_report_id_case_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporter_identity_reads")),
    )
    with op.batch_alter_table("reporter_identity_reads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reporter_identity_reads_case_id_created_at",
            ["case_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_reporter_identity_reads_case_report_id"),
            ["case_report_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_reporter_identity_reads_org_id"), ["org_id"], unique=False
        )

    _queue_existing_attachments()


def _queue_existing_attachments() -> None:
    """Attachments recorded before this revision get a pending file row, so the attachment
    fetcher brings their bytes over from intake like any new one."""
    attachments = sa.table(
        "case_attachments",
        sa.column("id", sa.Uuid()),
        sa.column("org_id", sa.Uuid()),
        sa.column("case_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    files = sa.table(
        "case_attachment_files",
        sa.column("id", sa.Uuid()),
        sa.column("org_id", sa.Uuid()),
        sa.column("case_attachment_id", sa.Uuid()),
        sa.column("case_id", sa.Uuid()),
        sa.column("status", sa.String(32)),
        sa.column("attempts", sa.Integer()),
        sa.column("gone_answers", sa.Integer()),
        sa.column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.column("size", sa.Integer()),
        sa.column("chunk_count", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            attachments.c.id, attachments.c.org_id, attachments.c.case_id, attachments.c.created_at
        )
    ).all()
    if not rows:
        return
    bind.execute(
        files.insert(),
        [
            {
                "id": uuid.uuid4(),
                "org_id": row.org_id,
                "case_attachment_id": row.id,
                "case_id": row.case_id,
                "status": "pending",
                "attempts": 0,
                "gone_answers": 0,
                # The attachment's own timestamp, as stored: due at once.
                "next_attempt_at": row.created_at,
                "size": 0,
                "chunk_count": 0,
                "created_at": row.created_at,
                "updated_at": row.created_at,
            }
            for row in rows
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("reporter_identity_reads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reporter_identity_reads_org_id"))
        batch_op.drop_index(batch_op.f("ix_reporter_identity_reads_case_report_id"))
        batch_op.drop_index("ix_reporter_identity_reads_case_id_created_at")
    op.drop_table("reporter_identity_reads")

    with op.batch_alter_table("case_attachment_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_attachment_chunks_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_attachment_chunks_case_id"))
    op.drop_table("case_attachment_chunks")

    with op.batch_alter_table("case_attachment_files", schema=None) as batch_op:
        batch_op.drop_index("ix_case_attachment_files_status_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_case_attachment_files_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_attachment_files_created_at"))
        batch_op.drop_index(batch_op.f("ix_case_attachment_files_case_id"))
    op.drop_table("case_attachment_files")
