"""The hostile-input suite: each case names what it proves (no 5xx, bounded time, bounded memory).

See tests/hostile/README.md for the list of cases and where older ones live.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.conftest import pg_database

# One ordinary, valid job for the load and saturation cases.
T2V = {
    "prompt": "a quiet harbour at dawn",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
    "fps": 24,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Server settings for each job store: SQLite in the data dir, or a fresh PG database."""
    if request.param == "sqlite":
        yield {}
    else:
        for url in pg_database():
            # PostgreSQL means several machines: serve refuses it without a shared secret
            yield {"LTXSERVE_DATABASE_URL": url, "LTXSERVE_SECRET": "hostile-test-secret"}
