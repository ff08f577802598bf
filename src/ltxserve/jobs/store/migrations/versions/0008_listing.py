"""jobs: an index for listing a key's jobs; idempotency_keys for Idempotency-Key

``GET /v2/jobs`` reads one key's jobs newest first, a page at a time, with a
keyset on (created_at, id): ``ix_jobs_key_created`` answers it with one ordered
index range scan that stops after the page, so a page costs the same whatever
the key's (or the table's) job count. ``idempotency_keys`` maps (API key,
Idempotency-Key) to the job it made and the hash of its request, for 24 h
(LTXSERVE_IDEMPOTENCY_SECONDS); its primary key is what makes two concurrent
submits with one key make one job.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_key_created", "jobs", ["api_key_id", "created_at", "id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_jobs_key_created", "jobs")
