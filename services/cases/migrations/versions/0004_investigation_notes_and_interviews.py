"""investigation notes and interviews

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_notes",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_notes_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_notes")),
    )
    with op.batch_alter_table("case_notes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_notes_case_id_created_at_id", ["case_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_case_notes_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_notes_org_id"), ["org_id"], unique=False)

    op.create_table(
        "case_note_versions",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=200), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_note_versions_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["case_notes.id"],
            name=op.f("fk_case_note_versions_note_id_case_notes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_note_versions")),
        sa.UniqueConstraint("note_id", "number", name=op.f("uq_case_note_versions_note_id_number")),
    )
    with op.batch_alter_table("case_note_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_note_versions_case_id_created_at_id",
            ["case_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_case_note_versions_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_case_note_versions_org_id"), ["org_id"], unique=False)

    op.create_table(
        "case_interviews",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_interviews_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_interviews")),
    )
    with op.batch_alter_table("case_interviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_interviews_case_id_created_at_id",
            ["case_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_case_interviews_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_case_interviews_org_id"), ["org_id"], unique=False)

    op.create_table(
        "case_interview_versions",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("interview_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "reporter",
                "witness",
                "respondent",
                "other",
                name="interview_role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interviewee", sa.LargeBinary(), nullable=True),
        sa.Column("interviewer_person_ids", sa.JSON(), nullable=False),
        sa.Column("attendees", sa.LargeBinary(), nullable=True),
        sa.Column("summary", sa.LargeBinary(), nullable=True),
        sa.Column("statement", sa.LargeBinary(), nullable=True),
        sa.Column("evidence_item_ids", sa.JSON(), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_interview_versions_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["interview_id"],
            ["case_interviews.id"],
            name=op.f("fk_case_interview_versions_interview_id_case_interviews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_interview_versions")),
        sa.UniqueConstraint(
            "interview_id", "number", name=op.f("uq_case_interview_versions_interview_id_number")
        ),
    )
    with op.batch_alter_table("case_interview_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_interview_versions_case_id_created_at_id",
            ["case_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_case_interview_versions_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_case_interview_versions_org_id"), ["org_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("case_interview_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_interview_versions_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_interview_versions_created_at"))
        batch_op.drop_index("ix_case_interview_versions_case_id_created_at_id")

    op.drop_table("case_interview_versions")
    with op.batch_alter_table("case_interviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_interviews_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_interviews_created_at"))
        batch_op.drop_index("ix_case_interviews_case_id_created_at_id")

    op.drop_table("case_interviews")
    with op.batch_alter_table("case_note_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_note_versions_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_note_versions_created_at"))
        batch_op.drop_index("ix_case_note_versions_case_id_created_at_id")

    op.drop_table("case_note_versions")
    with op.batch_alter_table("case_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_notes_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_notes_created_at"))
        batch_op.drop_index("ix_case_notes_case_id_created_at_id")

    op.drop_table("case_notes")
