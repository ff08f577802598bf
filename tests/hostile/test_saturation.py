"""Item 1 of issue 17: a saturated job store. Proves: no 5xx but 503, bounded time.

The test process takes the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL:
LOCK TABLE jobs) and holds it while a client submits. The server must answer 503
service_unavailable with Retry-After within a few seconds of its
LTXSERVE_DB_TIMEOUT_SECONDS (1 s here), not 500 after 30 s as before the fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import create_engine, text

from ltxserve.config import Settings
from tests.hostile.conftest import T2V
from tests.support import Server, assert_error


def test_saturated_store_answers_503_with_retry_after(
    make_server: Callable[..., Server], store_env: dict[str, str]
) -> None:
    srv = make_server(
        env={**store_env, "LTXSERVE_DB_TIMEOUT_SECONDS": "1", "LTXSERVE_KEY_CACHE_SECONDS": "60"},
        workers=0,
    )
    url = store_env.get("LTXSERVE_DATABASE_URL") or Settings(data_dir=srv.data_dir).db_url
    with srv.client() as c:
        assert c.post("/v2/text-to-video", json=T2V).status_code == 202  # key now cached
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if url.startswith("sqlite"):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.execute(text("BEGIN"))
                    conn.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
                try:
                    t0 = time.monotonic()
                    r = c.post("/v2/text-to-video", json=T2V)
                    took = time.monotonic() - t0
                finally:
                    conn.exec_driver_sql("ROLLBACK")
        finally:
            engine.dispose()
        assert_error(r, 503, "service_unavailable")
        assert r.headers["retry-after"] == "1"
        assert took < 8, took  # the 1 s store timeout plus a loaded machine's slack
        # and once the lock is gone the service is whole again
        assert c.post("/v2/text-to-video", json=T2V).status_code == 202
    assert "Traceback" not in srv.log()
