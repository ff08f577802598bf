"""Every store test runs against SQLite and, when available, PostgreSQL.

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
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.sql import JobStore

PG_URL = os.environ.get("LTXSERVE_TEST_PG_URL")


def pg_database() -> Iterator[str]:
    if not PG_URL:
        if os.environ.get("LTXSERVE_TEST_REQUIRE_PG"):
            pytest.fail("LTXSERVE_TEST_REQUIRE_PG is set but LTXSERVE_TEST_PG_URL is not")
        pytest.skip("PostgreSQL not configured (set LTXSERVE_TEST_PG_URL)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
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
def store(db_url: str, tmp_path: Path) -> Iterator[JobStore]:
    s = open_store(Settings(data_dir=tmp_path / "data", database_url=db_url))
    yield s
    s.engine.dispose()
