"""xAPI LRS: documents (State, Activity/Agent Profile), attachment contents, statement links
(agents and activities a statement mentions), activity definitions, and the StatementRef target
of a statement (`xapi_statements.object_ref`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:04:51.831313
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
        "xapi_activities",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xapi_activities")),
        sa.UniqueConstraint("org_id", "key_hash", name="uq_xapi_activities_org_id_key_hash"),
    )
    with op.batch_alter_table("xapi_activities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_xapi_activities_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_xapi_activities_org_id"), ["org_id"], unique=False)

    op.create_table(
        "xapi_attachments",
        sa.Column("sha2", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xapi_attachments")),
        sa.UniqueConstraint("org_id", "sha2", name="uq_xapi_attachments_org_id_sha2"),
    )
    with op.batch_alter_table("xapi_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_xapi_attachments_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_xapi_attachments_org_id"), ["org_id"], unique=False)

    op.create_table(
        "xapi_documents",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scope_hash", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=True),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.Column("registration", sa.String(length=36), nullable=True),
        sa.Column("document_id", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("stored", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xapi_documents")),
        sa.UniqueConstraint("org_id", "key_hash", name="uq_xapi_documents_org_id_key_hash"),
    )
    with op.batch_alter_table("xapi_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_xapi_documents_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_xapi_documents_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_xapi_documents_org_id_scope_hash", ["org_id", "scope_hash"], unique=False
        )

    op.create_table(
        "xapi_statement_links",
        sa.Column("statement_row", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("related", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xapi_statement_links")),
    )
    with op.batch_alter_table("xapi_statement_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_xapi_statement_links_lookup", ["org_id", "kind", "value_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_xapi_statement_links_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index("ix_xapi_statement_links_statement", ["statement_row"], unique=False)

    with op.batch_alter_table("xapi_statements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_ref", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_xapi_statements_object_ref"), ["object_ref"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("xapi_statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xapi_statements_object_ref"))
        batch_op.drop_column("object_ref")

    with op.batch_alter_table("xapi_statement_links", schema=None) as batch_op:
        batch_op.drop_index("ix_xapi_statement_links_statement")
        batch_op.drop_index(batch_op.f("ix_xapi_statement_links_org_id"))
        batch_op.drop_index("ix_xapi_statement_links_lookup")

    op.drop_table("xapi_statement_links")
    with op.batch_alter_table("xapi_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_xapi_documents_org_id_scope_hash")
        batch_op.drop_index(batch_op.f("ix_xapi_documents_org_id"))
        batch_op.drop_index(batch_op.f("ix_xapi_documents_created_at"))

    op.drop_table("xapi_documents")
    with op.batch_alter_table("xapi_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xapi_attachments_org_id"))
        batch_op.drop_index(batch_op.f("ix_xapi_attachments_created_at"))

    op.drop_table("xapi_attachments")
    with op.batch_alter_table("xapi_activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xapi_activities_org_id"))
        batch_op.drop_index(batch_op.f("ix_xapi_activities_created_at"))

    op.drop_table("xapi_activities")
