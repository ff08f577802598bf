"""credits: a balance per key and a ledger of every movement (docs/credits.md)

The ledger's partial unique indexes let a job be held once and settled (charged
or released) once, enforced by the database itself.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HOLD = sa.text("kind = 'hold'")
SETTLE = sa.text("kind IN ('charge', 'release')")


def upgrade() -> None:
    op.create_table(
        "credit_balances",
        sa.Column("api_key_id", sa.String(32), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("held", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "credit_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_credit_ledger_key", "credit_ledger", ["api_key_id", "id"])
    op.create_index(
        "uq_credit_ledger_hold",
        "credit_ledger",
        ["job_id"],
        unique=True,
        postgresql_where=HOLD,
        sqlite_where=HOLD,
    )
    op.create_index(
        "uq_credit_ledger_settle",
        "credit_ledger",
        ["job_id"],
        unique=True,
        postgresql_where=SETTLE,
        sqlite_where=SETTLE,
    )


def downgrade() -> None:
    op.drop_table("credit_ledger")
    op.drop_table("credit_balances")
