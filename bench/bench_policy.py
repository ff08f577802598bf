"""The submit path's cost of the admission features: submits/s with them on vs off (#14 item 7).

Two `ltxserve serve` processes (API only, no workers) on one database: "off" with
every limit and the content policy turned off, "on" with the features of
``FEATURES`` on. Rounds alternate between them in the same run (off-on, then
on-off, ...), each sending ``--submits`` `POST /v2/text-to-video` over
``--concurrency`` keep-alive connections (tests/load.py: a raw asyncio client, so
the client is not what is measured) spread over ``--keys`` keys; between rounds
the jobs are deleted, so every round starts on an empty queue. Printed: submits/s
per round and the median ratio off/on. Target: <= 1.3x. Any answer but 202 fails
the run (an "on" setting that refuses would measure refusals, not admissions).

"on" is pessimistic where it can be: the limits are set so high that they never
refuse, so the counts walk every pending job of the key and of the queue (up to
``--submits``), where a real limit of 2 stops at 2; the rate bucket is written on
every submit; the term list has 5,000 terms.

Adding a feature is one entry in ``FEATURES``: its settings, and if it needs them
per-request headers (an ``Idempotency-Key``) or a set-up step per key (a credit
top-up): credits and idempotency are such.

Usage: python bench/bench_policy.py [--submits 400] [--rounds 6] [--concurrency 32]
       [--keys 20] [--only concurrency,rate,queue,content_policy,credits,idempotency]
       [--stores sqlite,postgresql]
       [--store-level]
       [--pg-url postgresql+psycopg://postgres@127.0.0.1:54329/postgres]
PostgreSQL is skipped without --pg-url or $LTXSERVE_TEST_PG_URL (scripts/pg-start.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.load import run_load  # noqa: E402
from tests.support import Server  # noqa: E402

T2V = {
    "prompt": "a lighthouse on a cliff at dusk, waves below, slow pan",
    "model": "ltx-2-3-fast",
    "duration": 2,
    "resolution": "1280x720",
    "fps": 24,
}
HUGE = "1000000"


@dataclass(frozen=True)
class Feature:
    """One admission feature: the settings that turn it on, and what its requests need."""

    env: dict[str, str]
    headers: Callable[[int], dict[str, str]] | None = None  # per request (its index)
    setup: Callable[[Server, str], None] | None = None  # per key (the server, the key)
    files: dict[str, Callable[[Path], str]] = field(default_factory=dict)  # env var -> writer


def _terms(dir_: Path) -> str:
    path = dir_ / "terms.txt"
    path.write_text("\n".join(f"forbidden{i} phrase" for i in range(5_000)) + "\n")
    return str(path)


FEATURES: dict[str, Feature] = {
    # limits set so high they never refuse: the counts and the bucket are paid in full
    "concurrency": Feature({"LTXSERVE_MAX_UNFINISHED_PER_KEY": HUGE}),
    "rate": Feature({"LTXSERVE_RATE_LIMIT_PER_SECOND": HUGE, "LTXSERVE_RATE_LIMIT_BURST": HUGE}),
    "queue": Feature({"LTXSERVE_MAX_PENDING_JOBS": HUGE}),
    "content_policy": Feature({}, files={"LTXSERVE_CONTENT_TERMS_FILE": _terms}),
    # a balance that never runs out: the hold is written on every submit
    "credits": Feature(
        {"LTXSERVE_CREDITS": "true"},
        setup=lambda srv, key: srv.cli("keys", "top-up", key, "1000000000") and None,
    ),
    # a fresh key per submit, as the SDK sends: one more INSERT in the submit's transaction
    "idempotency": Feature({}, headers=lambda i: {"Idempotency-Key": uuid.uuid4().hex}),
}
OFF = {
    "LTXSERVE_MAX_UNFINISHED_PER_KEY": "0",
    "LTXSERVE_RATE_LIMIT_PER_SECOND": "0",
    "LTXSERVE_MAX_PENDING_JOBS": "0",
    "LTXSERVE_CONTENT_POLICY": "none",
    "LTXSERVE_CREDITS": "false",
}


def raw_submit(key: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [
        "POST /v2/text-to-video HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def requests(keys: list[str], n: int, features: list[Feature]) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        headers: dict[str, str] = {}
        for f in features:
            if f.headers is not None:
                headers.update(f.headers(i))
        body = orjson.dumps({**T2V, "prompt": f"{T2V['prompt']} {i}"})
        out.append(("submit", raw_submit(keys[i % len(keys)], body, headers)))
    return out


@contextmanager
def databases(pg_url: str | None) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """(label, env) per store: SQLite (a file in the shared data dir), PostgreSQL."""
    stores: list[tuple[str, dict[str, str]]] = [("sqlite", {})]
    name = f"bench_policy_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT") if pg_url else None
    if admin is not None and pg_url:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg_url.rsplit("/", 1)[0] + f"/{name}"
        stores.append(("postgresql", {"LTXSERVE_DATABASE_URL": url, "LTXSERVE_SECRET": "bench"}))
    try:
        yield stores
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def run_store(
    label: str, db_env: dict[str, str], names: list[str], args: argparse.Namespace
) -> tuple[float, float, float]:
    """Median submits/s off, on, and the median of the rounds' off/on ratios."""
    features = [FEATURES[n] for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        on_env = {**OFF}
        for f in features:
            on_env.update(f.env)
            for var, write in f.files.items():
                on_env[var] = write(Path(tmp))
        base = {**db_env, "LTXSERVE_KEY_CACHE_SECONDS": "2", "LTXSERVE_LOG_LEVEL": "warning"}
        off = Server(data, workers=0, env={**base, **OFF}).start()
        on = Server(data, workers=0, env={**base, **on_env}, api_key=off.api_key).start()
        try:
            keys = [off.api_key] + [
                off.cli("keys", "create").strip().splitlines()[-1] for _ in range(args.keys - 1)
            ]
            for f in features:
                if f.setup is not None:
                    for key in keys:
                        f.setup(on, key)
            sql = create_engine(
                db_env.get("LTXSERVE_DATABASE_URL") or f"sqlite:///{data}/ltxserve.db"
            )
            rates: dict[str, list[float]] = {"off": [], "on": []}
            for r in range(args.rounds + 1):  # round 0 warms both up and is not counted
                order = [("off", off, []), ("on", on, features)]
                for side, srv, feats in order if r % 2 else order[::-1]:
                    with sql.begin() as conn:
                        conn.execute(text("DELETE FROM jobs"))
                    load = requests(keys, args.submits, feats)
                    res = asyncio.run(run_load(srv.port, load, args.concurrency))
                    bad = {k: v for k, v in res.statuses().items() if k != 202}
                    if bad:
                        raise SystemExit(f"{label} {side}: answers other than 202: {bad}")
                    if r:
                        rates[side].append(args.submits / res.wall)
            sql.dispose()
        finally:
            on.stop()
            off.stop()
    ratios = [a / b for a, b in zip(rates["off"], rates["on"], strict=True)]
    for i, (a, b) in enumerate(zip(rates["off"], rates["on"], strict=True), 1):
        print(f"{label:>10} round {i}: off {a:7.0f}/s  on {b:7.0f}/s  ratio {a / b:5.2f}x")
    return (
        statistics.median(rates["off"]),
        statistics.median(rates["on"]),
        statistics.median(ratios),
    )


def store_level(url: str, data: Path, n: int = 300, rounds: int = 5) -> dict[str, float]:
    """Microseconds per ``create_job`` in this process (no HTTP), median of rounds: how
    the rate bucket's write is best placed. "own tx" writes the bucket in a separate
    transaction before the submit's (the alternative to the one in the submit's)."""
    from ltxserve.config import Settings
    from ltxserve.jobs.lifecycle.limits import Limits
    from ltxserve.jobs.store import limits as limits_sql
    from ltxserve.jobs.store.base import now_ms
    from ltxserve.jobs.store.db import open_store

    store = open_store(Settings(data_dir=data, database_url=url))

    def policy(**values: float) -> Limits:
        return Limits(Settings(data_dir=data, **values))  # type: ignore[arg-type]

    off = policy(max_unfinished_per_key=0)
    no_rate = policy(max_unfinished_per_key=int(HUGE), max_pending_jobs=int(HUGE))
    on = policy(
        max_unfinished_per_key=int(HUGE),
        max_pending_jobs=int(HUGE),
        rate_limit_per_second=float(HUGE),
        rate_limit_burst=int(HUGE),
    )

    def own_tx(key: str) -> None:
        with store._write() as conn:
            level = limits_sql.read(conn, key).tokens
            limits_sql.save_tokens(conn, key, (level or 5.0) - 1, now_ms())
        store.create_job(key, "text-to-video", T2V, admit=no_rate)

    variants: dict[str, Callable[[str], object]] = {
        "no admission": lambda k: store.create_job(k, "text-to-video", T2V),
        "limits off": lambda k: store.create_job(k, "text-to-video", T2V, admit=off),
        "on, bucket in the submit's tx": lambda k: store.create_job(
            k, "text-to-video", T2V, admit=on
        ),
        "on, bucket in its own tx": own_tx,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds + 1):
        for name, submit in variants.items():
            with store.engine.begin() as conn:
                conn.execute(text("DELETE FROM jobs"))
            t0 = time.perf_counter()
            for i in range(n):
                submit(f"k{i % 20}")
            if r:
                times[name].append((time.perf_counter() - t0) / n * 1e6)
    store.engine.dispose()
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--submits", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--keys", type=int, default=20)
    ap.add_argument("--only", default=",".join(FEATURES), help="features to turn on, comma list")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument(
        "--store-level", action="store_true", help="also time create_job in-process (no HTTP)"
    )
    ap.add_argument("--pg-url", default=os.environ.get("LTXSERVE_TEST_PG_URL"))
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(FEATURES)
    if unknown:
        raise SystemExit(f"unknown features {sorted(unknown)}; known: {', '.join(FEATURES)}")
    print(f"on: {', '.join(names)}; {args.submits} submits x {args.rounds} rounds per side")
    table = []
    with databases(args.pg_url) as stores:
        for label, env in stores:
            if label not in args.stores.split(","):
                continue
            table.append((label, *run_store(label, env, names, args)))
        if args.store_level:
            for label, env in stores:
                if label not in args.stores.split(","):
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    url = env.get("LTXSERVE_DATABASE_URL") or f"sqlite:///{tmp}/store.db"
                    for name, us in store_level(url, Path(tmp)).items():
                        print(f"{label:>10} store level: {name:32} {us:7.0f} us/submit")
    print("\n     store |   off /s    on /s | off/on (median of rounds; target <= 1.3x)")
    for label, off, on, ratio in table:
        verdict = "ok" if ratio <= 1.3 else "ABOVE TARGET"
        print(f"{label:>10} | {off:>8.0f} {on:>8.0f} | {ratio:>6.2f}x {verdict}")


if __name__ == "__main__":
    main()
