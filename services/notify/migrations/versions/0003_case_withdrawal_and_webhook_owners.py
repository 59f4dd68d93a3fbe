"""case withdrawal and webhook owners

Notices remember their case (`inbox_messages.case_id`, `deliveries.case_id`,
`webhook_deliveries.case_id`) so they can be withdrawn when cases hides the case from their
reader (`upstander.case.restricted`), which notify also remembers (`case_restrictions`).
Webhook endpoints get an owner (`webhooks.owner_person_id`); endpoints from before stay
without one and get no case events until an admin claims them by updating them.

Existing rows get their case id from what they already hold: an inbox message's link
(`.../cases/<id>`), a delivery's template parameters, a webhook delivery's payload.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:10:00
"""

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
_CASE_LINK = re.compile(r"/cases/([0-9a-fA-F-]{36})(?:[/?#]|$)")


def upgrade() -> None:
    op.create_table(
        "case_restrictions",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_restrictions")),
        sa.UniqueConstraint(
            "case_id", "person_id", name=op.f("uq_case_restrictions_case_id_person_id")
        ),
    )
    with op.batch_alter_table("case_restrictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_restrictions_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_case_restrictions_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("inbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_inbox_messages_case_id_person_id", ["case_id", "person_id"], unique=False
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_deliveries_case_id_person_id", ["case_id", "person_id"], unique=False
        )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_webhook_deliveries_case_id_webhook_id", ["case_id", "webhook_id"], unique=False
        )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_person_id", sa.Uuid(), nullable=True))

    _backfill("inbox_messages", ("link", sa.String()), ("kind", "case.%"), _from_link)
    _backfill(
        "deliveries",
        ("params", sa.JSON()),
        ("kind", "case.%"),
        lambda params: _as_uuid((params or {}).get("case_id")),
    )
    _backfill(
        "webhook_deliveries",
        ("payload", sa.JSON()),
        ("event_type", "upstander.case.%"),
        lambda payload: _as_uuid(((payload or {}).get("data") or {}).get("case_id")),
    )


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("owner_person_id")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_case_id_webhook_id")
        batch_op.drop_column("case_id")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_case_id_person_id")
        batch_op.drop_column("case_id")
    with op.batch_alter_table("inbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_messages_case_id_person_id")
        batch_op.drop_column("case_id")
    with op.batch_alter_table("case_restrictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_restrictions_org_id"))
        batch_op.drop_index(batch_op.f("ix_case_restrictions_created_at"))
    op.drop_table("case_restrictions")


# ----------------------------------------------------------------------------- backfill


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except (TypeError, ValueError):
        return None


def _from_link(link: Any) -> uuid.UUID | None:
    found = _CASE_LINK.search(str(link or ""))
    return _as_uuid(found.group(1)) if found else None


def _backfill(
    table_name: str,
    source: tuple[str, Any],
    case_rows: tuple[str, str],
    case_id_of: Callable[[Any], uuid.UUID | None],
) -> None:
    """Set `case_id` on the case rows of `table_name` (`case_rows`: a column and the LIKE
    pattern that marks them) from the `source` column, a page at a time."""
    (source_name, source_type), (kind_name, pattern) = source, case_rows
    table = sa.table(
        table_name,
        sa.column("id", sa.Uuid()),
        sa.column("case_id", sa.Uuid()),
        sa.column(source_name, source_type),
        sa.column(kind_name, sa.String()),
    )
    bind = op.get_bind()
    last: uuid.UUID | None = None
    while True:
        statement = (
            sa.select(table.c.id, table.c[source_name])
            .where(table.c[kind_name].like(pattern), table.c.case_id.is_(None))
            .order_by(table.c.id)
            .limit(BATCH)
        )
        if last is not None:
            statement = statement.where(table.c.id > last)
        rows = bind.execute(statement).all()
        if not rows:
            return
        last = rows[-1][0]
        found = [
            {"row_id": row_id, "found_case_id": case_id}
            for row_id, value in rows
            if (case_id := case_id_of(value)) is not None
        ]
        if found:
            bind.execute(
                table.update()
                .where(table.c.id == sa.bindparam("row_id"))
                .values(case_id=sa.bindparam("found_case_id")),
                found,
            )
