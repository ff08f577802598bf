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
    Index("ix_jobs_queue", "status", "created_at"),
    # the claim's index on PostgreSQL: the live queue only, in age order (migration 0004)
    Index(
        "ix_jobs_runnable",
        "created_at",
        postgresql_where=text("status IN ('pending', 'processing')"),
        sqlite_where=text("status IN ('pending', 'processing')"),
    ),
    Index("ix_jobs_expires_at", "expires_at"),
    # the per-key concurrency count at submit: a key's live jobs only (migration 0005_limits)
    Index(
        "ix_jobs_key_unfinished",
        "api_key_id",
        postgresql_where=text("status IN ('pending', 'processing')"),
        sqlite_where=text("status IN ('pending', 'processing')"),
    ),
)

# Per-key limit overrides and the key's rate bucket (docs/limits.md; migration 0005_limits).
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
