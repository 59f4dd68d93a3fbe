"""escrow and private records: held reports, blind indexes, aliases, per-org rules; sealed
private records and their entries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:00:00.000000
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
        "escrow_entries",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("match_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_index", sa.String(length=64), nullable=True),
        sa.Column("receipt_lookup", sa.String(length=64), nullable=True),
        sa.Column("receipt_hash", sa.String(length=200), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escrow_entries")),
        sa.UniqueConstraint("receipt_lookup", name=op.f("uq_escrow_entries_receipt_lookup")),
    )
    with op.batch_alter_table("escrow_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escrow_entries_expires_at"), ["expires_at"])
        batch_op.create_index(batch_op.f("ix_escrow_entries_match_id"), ["match_id"])
        batch_op.create_index(batch_op.f("ix_escrow_entries_org_id"), ["org_id"])

    op.create_table(
        "escrow_identifiers",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("blind_index", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["escrow_entries.id"],
            name=op.f("fk_escrow_identifiers_entry_id_escrow_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escrow_identifiers")),
    )
    with op.batch_alter_table("escrow_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escrow_identifiers_entry_id"), ["entry_id"])
        batch_op.create_index(batch_op.f("ix_escrow_identifiers_org_id"), ["org_id"])
        batch_op.create_index("ix_escrow_identifiers_org_id_blind_index", ["org_id", "blind_index"])

    op.create_table(
        "escrow_aliases",
        sa.Column("blind_index", sa.String(length=64), nullable=False),
        sa.Column("person_index", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("blind_index", name=op.f("pk_escrow_aliases")),
    )
    with op.batch_alter_table("escrow_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escrow_aliases_org_id"), ["org_id"])

    op.create_table(
        "escrow_settings",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("expiry_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_escrow_settings")),
    )

    op.create_table(
        "private_records",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_lookup", sa.String(length=64), nullable=False),
        sa.Column("kdf", sa.String(length=200), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_records")),
        sa.UniqueConstraint("record_lookup", name=op.f("uq_private_records_record_lookup")),
    )
    with op.batch_alter_table("private_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_private_records_org_id"), ["org_id"])

    op.create_table(
        "private_record_entries",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["private_records.id"],
            name=op.f("fk_private_record_entries_record_id_private_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_record_entries")),
    )
    with op.batch_alter_table("private_record_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_private_record_entries_org_id"), ["org_id"])
        batch_op.create_index(batch_op.f("ix_private_record_entries_record_id"), ["record_id"])


def downgrade() -> None:
    with op.batch_alter_table("private_record_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_private_record_entries_record_id"))
        batch_op.drop_index(batch_op.f("ix_private_record_entries_org_id"))
    op.drop_table("private_record_entries")
    with op.batch_alter_table("private_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_private_records_org_id"))
    op.drop_table("private_records")
    op.drop_table("escrow_settings")
    with op.batch_alter_table("escrow_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escrow_aliases_org_id"))
    op.drop_table("escrow_aliases")
    with op.batch_alter_table("escrow_identifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_escrow_identifiers_org_id_blind_index")
        batch_op.drop_index(batch_op.f("ix_escrow_identifiers_org_id"))
        batch_op.drop_index(batch_op.f("ix_escrow_identifiers_entry_id"))
    op.drop_table("escrow_identifiers")
    with op.batch_alter_table("escrow_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escrow_entries_org_id"))
        batch_op.drop_index(batch_op.f("ix_escrow_entries_match_id"))
        batch_op.drop_index(batch_op.f("ix_escrow_entries_expires_at"))
    op.drop_table("escrow_entries")
