"""${message}

Revision ID: ${up_revision}
Revises: ${(", ".join(down_revision) if isinstance(down_revision, (list, tuple)) else down_revision) or "-"}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
<%
    # The kit's render_item also asks for "import sqlalchemy as sa"; it is imported above.
    extra_imports = [line for line in (imports or "").splitlines() if line.strip() != "import sqlalchemy as sa"]
%>${"\n".join(extra_imports)}

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
