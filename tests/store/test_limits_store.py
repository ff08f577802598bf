"""The limits policy on each store (memory, SQLite, PostgreSQL): key overrides, the
token bucket kept in the store and committed only with an admitted job, counts that
stop at the limit, and a queue-depth limit that stays exact under concurrent submits
of many keys (PostgreSQL: the queue lock near the limit)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ltxserve.config import Settings
from ltxserve.errors import (
    ConcurrencyLimitError,
    RateLimitError,
    ServiceUnavailableError,
    StoreBusyError,
)
from ltxserve.jobs.lifecycle.limits import Limits, take_token
from ltxserve.jobs.store.base import JobStore, KeyLimits
from ltxserve.jobs.store.db import open_store
from ltxserve.jobs.store.limits import key_lock, lock_id
from tests.store.conftest import pg_database


def limits(tmp_path: Path, **values: float) -> Limits:
    return Limits(Settings(data_dir=tmp_path, **values))  # type: ignore[arg-type]


def test_overrides_round_trip(store: JobStore) -> None:
    assert store.get_key_limits("k1") == KeyLimits()
    store.set_key_limits("k1", max_unfinished=5)
    store.set_key_limits("k1", rate_per_second=0.5, rate_burst=3)
    assert store.get_key_limits("k1") == KeyLimits(5, 0.5, 3, None, None)
    store.set_key_limits("k1", max_unfinished=None)  # back to the server's setting
    assert store.get_key_limits("k1").max_unfinished is None
    assert store.get_key_limits("k2") == KeyLimits()
    with pytest.raises(ValueError):
        store.set_key_limits("k1", tokens=3)


def test_concurrency_default_and_override(store: JobStore, tmp_path: Path) -> None:
    admit = limits(tmp_path)  # the release's default: 2
    for _ in range(2):
        store.create_job("k1", "text-to-video", {}, admit=admit)
    with pytest.raises(ConcurrencyLimitError):
        store.create_job("k1", "text-to-video", {}, admit=admit)
    store.set_key_limits("k1", max_unfinished=3)
    store.create_job("k1", "text-to-video", {}, admit=admit)
    with pytest.raises(ConcurrencyLimitError):
        store.create_job("k1", "text-to-video", {}, admit=admit)
    store.set_key_limits("k1", max_unfinished=0)  # unlimited for this key
    for _ in range(3):
        store.create_job("k1", "text-to-video", {}, admit=admit)


def test_bucket_is_stored_and_only_admitted_submits_take_a_token(
    store: JobStore, tmp_path: Path
) -> None:
    admit = limits(
        tmp_path, max_unfinished_per_key=1, rate_limit_per_second=0.001, rate_limit_burst=2
    )
    store.create_job("k1", "text-to-video", {}, admit=admit)
    left = store.get_key_limits("k1").tokens
    assert left is not None and 0.99 < left < 1.01
    with pytest.raises(ConcurrencyLimitError):  # refused: its transaction takes no token
        store.create_job("k1", "text-to-video", {}, admit=admit)
    assert store.get_key_limits("k1").tokens == left
    store.set_key_limits("k1", max_unfinished=0)
    store.create_job("k1", "text-to-video", {}, admit=admit)
    with pytest.raises(RateLimitError) as refused:
        store.create_job("k1", "text-to-video", {}, admit=admit)
    assert refused.value.retry_after is not None and 900 < refused.value.retry_after <= 1000
    assert type(refused.value) is RateLimitError  # rate_limit_error, not concurrency


def test_take_token_refills_and_caps() -> None:
    empty = KeyLimits(tokens=0.0, tokens_at=1_000)
    assert take_token(KeyLimits(), 1.0, 5, 0) == (4.0, 0.0)  # never used: full
    level, wait = take_token(empty, 2.0, 5, 1_250)  # 0.25 s at 2/s: half a token
    assert level is None and abs(wait - 0.25) < 1e-9
    assert take_token(empty, 2.0, 5, 1_500) == (0.0, 0.0)
    assert take_token(empty, 2.0, 5, 1_000_000) == (4.0, 0.0)  # capped at the burst
    assert take_token(empty, 2.0, 5, 0)[0] is None  # a clock behind never refills backwards


def test_queue_depth_exact_under_concurrent_submits_of_many_keys(
    store: JobStore, tmp_path: Path
) -> None:
    cap, tries = 5, 12
    admit = limits(tmp_path, max_unfinished_per_key=0, max_pending_jobs=cap)
    barrier = threading.Barrier(tries)
    outcomes: list[str] = []

    def submit(n: int) -> None:
        barrier.wait()
        try:
            store.create_job(f"k{n}", "text-to-video", {}, admit=admit)
            outcomes.append("admitted")
        except ServiceUnavailableError as exc:
            assert exc.retry_after == 5
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(tries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["admitted"] * cap + ["refused"] * (tries - cap)
    assert store.claim("w", 30, 3, retention_ms=1000) is not None  # processing is not queued
    store.create_job("k-late", "text-to-video", {}, admit=admit)


def test_a_held_key_lock_is_a_bounded_503_not_a_hang(tmp_path: Path) -> None:
    """PostgreSQL takes the key's lock and reads the limits in one pipelined round trip:
    a lock held elsewhere past lock_timeout is StoreBusyError (503), as any wait is.
    (SQLite has no key lock: one writer at a time.)"""
    for url in pg_database():
        store = open_store(Settings(data_dir=tmp_path, database_url=url, db_timeout_seconds=0.5))
        admit = limits(tmp_path)
        store.create_job("k1", "text-to-video", {}, admit=admit)  # the pipeline works
        with store.engine.connect() as holder:
            holder.execute(select(func.pg_advisory_xact_lock(lock_id(key_lock("k1")))))
            t0 = time.monotonic()
            with pytest.raises(StoreBusyError):
                store.create_job("k1", "text-to-video", {}, admit=admit)
            assert time.monotonic() - t0 < 5
            store.create_job("k2", "text-to-video", {}, admit=admit)  # other keys go on
            holder.rollback()
        store.create_job("k1", "text-to-video", {}, admit=admit)  # and the pool is healthy
        store.engine.dispose()


def test_key_limits_hold_under_concurrent_submits_of_one_key(
    store: JobStore, tmp_path: Path
) -> None:
    """Eight threads submit for one key at once: the concurrency limit (3) and the bucket
    (burst 5, no refill to speak of) and a key's own limit with the server's off each admit
    exactly their number, because the key's lock is taken with the read that decides."""
    store.set_key_limits("k3", max_unfinished=2)
    for admit, key, want in [
        (limits(tmp_path, max_unfinished_per_key=3), "k1", 3),
        (
            limits(
                tmp_path, max_unfinished_per_key=0, rate_limit_per_second=0.001, rate_limit_burst=5
            ),
            "k2",
            5,
        ),
        (limits(tmp_path, max_unfinished_per_key=0), "k3", 2),  # k3's own limit, server off
    ]:
        barrier = threading.Barrier(8)
        admitted: list[int] = []

        def submit(
            n: int,
            admit: Limits = admit,
            key: str = key,
            barrier: threading.Barrier = barrier,
            admitted: list[int] = admitted,
        ) -> None:
            barrier.wait()
            try:
                store.create_job(key, "text-to-video", {"n": n}, admit=admit)
                admitted.append(n)
            except (ConcurrencyLimitError, RateLimitError):
                pass

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(admitted) == want, (key, admitted)


def test_a_keys_own_limits_apply_when_the_server_has_none(store: JobStore, tmp_path: Path) -> None:
    admit = limits(tmp_path, max_unfinished_per_key=0)  # every server-wide limit off
    for _ in range(3):
        store.create_job("free", "text-to-video", {}, admit=admit)
    store.set_key_limits("capped", max_unfinished=1)
    store.create_job("capped", "text-to-video", {}, admit=admit)
    with pytest.raises(ConcurrencyLimitError):
        store.create_job("capped", "text-to-video", {}, admit=admit)
    store.set_key_limits("slow", rate_per_second=0.001, rate_burst=1)
    store.create_job("slow", "text-to-video", {}, admit=admit)
    with pytest.raises(RateLimitError):
        store.create_job("slow", "text-to-video", {}, admit=admit)
