"""Table definitions: the schema the Alembic migrations must produce (a test checks).

Times are integer milliseconds since the epoch: exact at the API's millisecond
precision, portable between SQLite and PostgreSQL, and cheap to compare.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("simulate", Text, nullable=True),  # client-testing directives; NULL = off
    Column("webhook_url", Text, nullable=True),  # default callback_url of the key's jobs
    Column("webhook_secret", String(64), nullable=True),  # whsec_...: signs its webhooks
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("api_key_id", String(32), nullable=False),
    Column("endpoint", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("result", JSON, nullable=True),
    Column("error_type", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("progress", Float, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    # bumped by every status or progress change: the live events' id (migration 0007)
    Column("version", Integer, nullable=False, server_default="0"),
    Index("ix_jobs_queue", "status", "created_at"),
    # the claim's index on PostgreSQL: the live queue only, in age order (migration 0004)
    Index(
        "ix_jobs_runnable",
        "created_at",
        postgresql_where=text("status IN ('pending', 'processing')"),
        sqlite_where=text("status IN ('pending', 'processing')"),
    ),
    Index("ix_jobs_expires_at", "expires_at"),
    # GET /v2/jobs: one key's jobs newest first, keyset on (created_at, id) (migration 0008)
    Index("ix_jobs_key_created", "api_key_id", "created_at", "id"),
    # the per-key concurrency count at submit: a key's live jobs only (migration 0009)
    Index(
        "ix_jobs_key_unfinished",
        "api_key_id",
        postgresql_where=text("status IN ('pending', 'processing')"),
        sqlite_where=text("status IN ('pending', 'processing')"),
    ),
)

# Idempotency-Key of a submit -> the job it made, per API key (migration 0008)
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # sha256 of endpoint + canonical body
    Column("job_id", String(36), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

# Per-key limit overrides and the key's rate bucket (docs/limits.md; migration 0009).
# A row exists only for a key with an override or whose bucket has been used.
key_limits = Table(
    "key_limits",
    metadata,
    Column("api_key_id", String(32), primary_key=True),
    Column("max_unfinished", Integer, nullable=True),  # NULL: server setting; 0: unlimited
    Column("rate_per_second", Float, nullable=True),  # NULL: server setting; 0: off
    Column("rate_burst", Integer, nullable=True),  # NULL: server setting
    Column("tokens", Float, nullable=True),  # the bucket's level at tokens_at
    Column("tokens_at", BigInteger, nullable=True),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("api_key_id", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("url_expires_at", BigInteger, nullable=False),  # the PUT URL stops working
    Column("expires_at", BigInteger, nullable=False),  # the storage_uri stops working
    Column("completed_at", BigInteger, nullable=True),  # set once the PUT has landed
    Column("size", BigInteger, nullable=True),
    Column("content_type", String(200), nullable=True),
    Index("ix_uploads_expires_at", "expires_at"),
)

# -- credits (docs/credits.md; migration 0005) --------------------------------
# A key's credits: ``balance`` is what it may still spend, ``held`` what its unfinished
# jobs have set aside (a hold moves credits from one to the other). No row: 0 and 0.
credit_balances = Table(
    "credit_balances",
    metadata,
    Column("api_key_id", String(32), primary_key=True),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("held", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", BigInteger, nullable=False),
)

# Every movement of credits, kept after its job's row is gone (no foreign key). Amounts
# are positive; ``kind`` gives the direction; ``balance`` is the key's balance after it.
# The partial unique indexes are the ledger's own guard that a job is held at most once
# and settled (charged or released) at most once, whatever the code above it does.
credit_ledger = Table(
    "credit_ledger",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("api_key_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # top_up | hold | charge | release
    Column("amount", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("job_id", String(36), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_credit_ledger_key", "api_key_id", "id"),
    Index(
        "uq_credit_ledger_hold",
        "job_id",
        unique=True,
        postgresql_where=text("kind = 'hold'"),
        sqlite_where=text("kind = 'hold'"),
    ),
    Index(
        "uq_credit_ledger_settle",
        "job_id",
        unique=True,
        postgresql_where=text("kind IN ('charge', 'release')"),
        sqlite_where=text("kind IN ('charge', 'release')"),
    ),
)


# One row per webhook message (docs/webhooks.md): inserted in the transaction that
# finishes the job (deliveries.py), claimed with a lease by an API process's delivery loop.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # msg_<hex>: the webhook-id header
    Column("job_id", String(36), nullable=False),
    Column("api_key_id", String(32), nullable=False),
    Column("endpoint", String(40), nullable=False),
    Column("event", String(40), nullable=False),  # job.completed | job.failed
    Column("url", Text, nullable=False),
    Column("base_url", Text, nullable=False),  # where result URLs in the event point
    Column("payload", Text, nullable=True),  # the body, set at the first attempt, then kept
    Column("state", String(16), nullable=False),  # pending | succeeded | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("log", JSON, nullable=True),  # the attempts: at, duration_ms, status_code, error
    UniqueConstraint("job_id", "event", name="uq_webhook_deliveries_job_event"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_job", "job_id"),
)
