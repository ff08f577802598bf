"""Every store contract test runs against memory, SQLite and, when available, PostgreSQL.

``store`` is the JobStore Protocol over all three (the same test functions);
``sql_store`` is the SQL implementation alone, for what only it has (migrations,
the doorbell on its engine).

PostgreSQL comes from LTXSERVE_TEST_PG_URL (``.ci/run`` starts one on loopback via
scripts/pg-start.sh); each test gets a database of its own. Without the variable
the PostgreSQL cases are skipped locally, but CI sets it and also sets
LTXSERVE_TEST_REQUIRE_PG=1 so a missing server fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ltxserve.config import Settings
from ltxserve.jobs.store.base import JobStore
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.memory import MemoryJobStore
from ltxserve.jobs.store.sql import SqlJobStore

PG_URL = os.environ.get("LTXSERVE_TEST_PG_URL")


def pg_database(server: str | None = None, label: str = "t") -> Iterator[str]:
    """A database of its own on ``server`` (default: LTXSERVE_TEST_PG_URL's), dropped
    after; the benches make theirs the same way."""
    server = server or PG_URL
    if not server:
        if os.environ.get("LTXSERVE_TEST_REQUIRE_PG"):
            pytest.fail("LTXSERVE_TEST_REQUIRE_PG is set but LTXSERVE_TEST_PG_URL is not")
        pytest.skip("PostgreSQL not configured (set LTXSERVE_TEST_PG_URL)")
    name = f"{label}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from pg_database()


@pytest.fixture
def sql_store(db_url: str, tmp_path: Path) -> Iterator[SqlJobStore]:
    s = open_store(Settings(data_dir=tmp_path / "data", database_url=db_url))
    yield s
    s.engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "memory":
        yield MemoryJobStore()
        return
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'store.db'}"])
    else:
        urls = pg_database()
    for url in urls:
        s = open_store(Settings(data_dir=tmp_path / "data", database_url=url))
        try:
            yield s
        finally:
            s.engine.dispose()
