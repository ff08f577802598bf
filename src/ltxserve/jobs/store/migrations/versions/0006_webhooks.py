"""webhooks: api_keys.webhook_url/webhook_secret and the webhook_deliveries table

Every existing key gets a signing secret of its own, as new keys do (keys.py).

Revision ID: 0006
Revises: 0005
"""

import base64
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("webhook_url", sa.Text, nullable=True))
    op.add_column("api_keys", sa.Column("webhook_secret", sa.String(64), nullable=True))
    keys = sa.table("api_keys", sa.column("id", sa.String), sa.column("webhook_secret", sa.String))
    bind = op.get_bind()
    for (key_id,) in bind.execute(sa.select(keys.c.id)).all():
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        bind.execute(keys.update().where(keys.c.id == key_id).values(webhook_secret=secret))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=True),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger, nullable=True),
        sa.Column("log", sa.JSON, nullable=True),
        sa.UniqueConstraint("job_id", "event", name="uq_webhook_deliveries_job_event"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_job", "webhook_deliveries", ["job_id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
