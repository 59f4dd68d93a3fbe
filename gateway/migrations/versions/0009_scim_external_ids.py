"""people carry what SCIM provisions: an external id (unique per org), name parts, department,
employee number, a userName and emails as provisioned

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("given_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("family_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("department", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("employee_number", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("scim_user_name", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("scim_emails", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("scim_deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_people_org_id_external_id", ["org_id", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint("uq_people_org_id_external_id", type_="unique")
        batch_op.drop_column("scim_deleted_at")
        batch_op.drop_column("scim_emails")
        batch_op.drop_column("scim_user_name")
        batch_op.drop_column("employee_number")
        batch_op.drop_column("department")
        batch_op.drop_column("family_name")
        batch_op.drop_column("given_name")
        batch_op.drop_column("external_id")
