"""jobs: a partial index of the runnable jobs (pending, processing) by age, for the claim

The claim's plan used to be a bitmap OR over ix_jobs_queue, which returns every
index entry of the old row versions too (each job leaves one behind per status
change); on a large table autovacuum comes round only after 20 % of it has
changed, so the idle claim grew with the churn (bench/bench_scale.py). An ordered
scan of this index stops at the first runnable job and marks the dead entries it
passes, and the index holds the live queue only, never the finished jobs.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RUNNABLE = sa.text("status IN ('pending', 'processing')")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_runnable",
        "jobs",
        ["created_at"],
        postgresql_where=RUNNABLE,
        sqlite_where=RUNNABLE,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_runnable", "jobs")
