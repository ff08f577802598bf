"""jobs.version: a per-job counter bumped by every status or progress change

Live events (GET /v2/{endpoint}/{id}/events, docs/api.md "Live events") use it as
the SSE event id: a client that reconnects with ``Last-Event-ID: n`` is sent the
job's state only if its version moved past n, so it gets what it missed and no
repeat. Existing rows start at 0, as a new job does.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("version", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("version")
