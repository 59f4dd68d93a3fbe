"""scopes are the unit of authority: clients' roles become scopes; revoked access tokens;
the scope a person narrowed a sign-in to, kept for its refreshes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The catalogue and role map as they stood at this revision (upstander.kit.scopes), frozen
# here so that the migration means the same thing whatever the code says later.
CATALOGUE = (
    "intake:write forms:write cases:read cases:content cases:write cases:export cases:admin "
    "audit:read stats:read people:read people:write clients:manage org:read org:write "
    "training:read training:write xapi:read xapi:write webhooks:manage notifications:manage "
    "events:manage scim"
).split()
_HANDLER = ["cases:read", "cases:content", "cases:write", "people:read"]
ROLE_SCOPES: dict[str, list[str]] = {
    "admin": CATALOGUE,
    "case_manager": [*_HANDLER, "cases:export", "stats:read"],
    "investigator": _HANDLER,
    "reviewer": [*_HANDLER, "cases:export"],
    "trainer": ["training:read", "training:write", "xapi:read", "xapi:write", "people:read"],
    "staff": [],
    "hr_integration": ["people:read"],
    "auditor": ["audit:read", "stats:read", "people:read", "training:read", "xapi:read"],
}


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return [str(item) for item in value or []]


def upgrade() -> None:
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_revoked_tokens_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=2000), nullable=True))

    # An organisation's clients were given roles; from now on they pass by scope alone. Each
    # keeps the catalogue scopes it had plus those its roles amount to (a made-up scope such
    # as `identity:write` granted nothing and is dropped). Their roles stay: they still
    # narrow which cases the client sees. Tokens signed before keep their claims until they
    # expire (at most an hour); a token with no scope then opens nothing.
    clients = sa.table(
        "api_clients",
        sa.column("id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("roles", sa.JSON()),
        sa.column("scopes", sa.JSON()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(clients.c.id, clients.c.roles, clients.c.scopes).where(clients.c.kind == "client")
    ).all()
    for row in rows:
        scopes = [s for s in _list(row.scopes) if s in CATALOGUE]
        for role in _list(row.roles):
            scopes.extend(ROLE_SCOPES.get(role, []))
        merged = list(dict.fromkeys(scopes))
        if merged != _list(row.scopes):
            connection.execute(clients.update().where(clients.c.id == row.id).values(scopes=merged))


def downgrade() -> None:
    # Clients keep the scopes they were given: scopes were always signed into their tokens.
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("scope")
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revoked_tokens_expires_at"))
    op.drop_table("revoked_tokens")
