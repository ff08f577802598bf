"""key_limits (per-key limit overrides, rate bucket) and an index of each key's live jobs

The submit's admission reads one key_limits row (overrides and the token bucket,
written back in the same transaction) and counts the key's pending and processing
jobs; ix_jobs_key_unfinished keeps that count to the key's live jobs, whatever
the size of the queue or of the retained history (docs/limits.md).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UNFINISHED = sa.text("status IN ('pending', 'processing')")


def upgrade() -> None:
    op.create_table(
        "key_limits",
        sa.Column("api_key_id", sa.String(32), primary_key=True),
        sa.Column("max_unfinished", sa.Integer, nullable=True),
        sa.Column("rate_per_second", sa.Float, nullable=True),
        sa.Column("rate_burst", sa.Integer, nullable=True),
        sa.Column("tokens", sa.Float, nullable=True),
        sa.Column("tokens_at", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_jobs_key_unfinished",
        "jobs",
        ["api_key_id"],
        postgresql_where=UNFINISHED,
        sqlite_where=UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_key_unfinished", "jobs")
    op.drop_table("key_limits")
