"""Fault tests report their counts (jobs, kills, reclaims, 503s ...) at the end of the
run, in pytest's terminal summary, so a CI log shows them without ``-s`` (the summary
is tests/conftest.py's: it must run in xdist's controller, which never loads this file)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import FIGURES
from tests.faults.cluster import Cluster
from tests.storage.conftest import S3_URL, create_bucket, s3_client
from tests.store.conftest import pg_database


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of figures for the run's summary (and print it for ``-s``).

    The line rides on the test's report (``user_properties``), which xdist sends from
    the worker that ran the test to the controller that prints the summary."""

    def add(line: str) -> None:
        line = f"{request.node.name}: {line}"
        print(line)
        request.node.user_properties.append((FIGURES, line))

    return add


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[[str], Cluster]]:
    """Make clusters on a database URL; every process is stopped after the test."""
    made: list[Cluster] = []

    def make(db_url: str) -> Cluster:
        from tests.faults.cluster import FAULT_ENV

        c = Cluster(tmp_path / f"cluster{len(made)}", db_url, env=dict(FAULT_ENV))
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def s3_bucket() -> str:
    """A bucket of the test's own on the shared S3 server (scripts/s3-start.sh)."""
    if not S3_URL:
        if os.environ.get("LTXSERVE_TEST_STRICT"):
            pytest.fail("LTXSERVE_TEST_STRICT is set but LTXSERVE_TEST_S3_ENDPOINT is not")
        pytest.skip("S3 server not configured (set LTXSERVE_TEST_S3_ENDPOINT)")
    return create_bucket(s3_client())


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of the test's own on the shared PostgreSQL."""
    yield from pg_database()
