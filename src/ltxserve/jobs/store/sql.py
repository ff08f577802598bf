"""SqlJobStore: every read and write of jobs, uploads and keys, dialect-neutral SQLAlchemy Core.

SQLite (WAL, ``BEGIN IMMEDIATE`` for claims) on one machine; PostgreSQL
(``FOR UPDATE SKIP LOCKED``) for many. Status changes go through
``states.check_transition`` and a compare-and-set UPDATE, so two processes
racing on one job cannot both win.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ltxserve.errors import StoreBusyError
from ltxserve.jobs.lifecycle.changes import ChangeFeed
from ltxserve.jobs.lifecycle.doorbell import CHANNEL, Doorbell, FifoDoorbell, PgDoorbell, Silent
from ltxserve.jobs.lifecycle.states import JobStatus, check_transition
from ltxserve.jobs.store import deliveries, events, ledger, listing, pg_finish
from ltxserve.jobs.store import idempotency as idempotency_sql
from ltxserve.jobs.store import limits as limits_sql
from ltxserve.jobs.store.base import (
    LOST_MESSAGE,
    Admission,
    Credits,
    Delivery,
    DeliveryOutcome,
    IdempotencyClaim,
    Job,
    JobView,
    KeyLimits,
    LedgerEntry,
    LimitsState,
    ListQuery,
    Upload,
    now_ms,
    valid_upload_id,
)
from ltxserve.jobs.store.base import JobStore as BaseJobStore
from ltxserve.jobs.store.batch import Batch
from ltxserve.jobs.store.pg_claim import CLAIM as PG_CLAIM
from ltxserve.jobs.store.tables import api_keys, jobs, uploads

log = logging.getLogger(__name__)


def _job(row: Any) -> Job:
    m = row if isinstance(row, dict) else row._mapping  # a Batch's row, or Core's
    values = {k: m[k] for k in Job.__dataclass_fields__}
    values["status"] = JobStatus(values["status"])
    return Job(**values)


DEFAULT_DB_TIMEOUT = 5.0


def make_engine(url: str, timeout: float = DEFAULT_DB_TIMEOUT) -> Engine:
    """An engine whose every wait (pool checkout, SQLite lock) is bounded by ``timeout``.

    Past it the store raises StoreBusyError (503 with Retry-After) instead of
    holding the request for SQLAlchemy's and SQLite's default 30 s.
    """
    if url.startswith("sqlite"):
        # Connections are cheap and checked out only for one statement or one
        # write transaction, so the pool need not be small; writers queue on the
        # store's own lock (SqlJobStore._write), not on the pool.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeout},
            pool_size=8,
            max_overflow=56,
            pool_timeout=timeout,
        )
        busy_ms = int(timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front, so a claim's read-then-update
            # cannot interleave with another process's claim.
            # Reads run in autocommit: a single SELECT needs no transaction, and
            # skipping BEGIN/ROLLBACK halves the cost of the status poll.
            if conn.info.get("write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # a row or table lock held elsewhere is waited on for as long, not forever
        connect_args["options"] = f"-c lock_timeout={int(timeout * 1000)}"
    # No pool_pre_ping: it costs a round trip on every checkout, i.e. every transaction.
    # A connection the server dropped (a restart) fails its first statement instead, as
    # StoreBusyError (503; a worker retries), and that failure invalidates the whole
    # pool, so every connection opened before it is replaced at its next checkout
    # (SQLAlchemy does this on its own paths; _FastQuery does it on its bare one).
    # All 30 connections are kept once opened (no overflow): an overflow connection is
    # closed when it is returned, so under more than pool_size concurrent requests (the
    # API's thread pool runs 40) every request paid a PostgreSQL connect and backend
    # start, and 50 concurrent status polls spent more on connecting than on polling
    # (bench/bench_poll.py --pg-url). Same ceiling of 30 per process as before.
    return create_engine(
        url,
        pool_size=30,
        max_overflow=0,
        pool_timeout=timeout,
        connect_args=connect_args,
    )


def is_busy(exc: BaseException, sqlite: bool) -> bool:
    """True for the errors that mean "the database is saturated or away", not a bug.

    A pool checkout that timed out; SQLite's "database is locked/busy"; any
    PostgreSQL OperationalError (connection refused or lost, too many clients,
    server shutting down).
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        if not sqlite:
            return True
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text
    return False


@contextmanager
def busy_as_503(sqlite: bool) -> Iterator[None]:
    """Turn a saturated-database error into StoreBusyError (domain error; 503 in the API)."""
    try:
        yield
    except (sa_exc.TimeoutError, sa_exc.OperationalError) as exc:
        if is_busy(exc, sqlite):
            log.warning("job store busy: %s", exc.__class__.__name__)
            raise StoreBusyError() from exc
        raise


_GET_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_GET_VIEW = select(*(jobs.c[name] for name in JobView.__dataclass_fields__)).where(
    jobs.c.id == bindparam("job_id")
)
_KEY_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("key_hash"))
_RING = select(func.pg_notify(CHANNEL, ""))  # PostgreSQL delivers it at commit
_INSERT_JOB = insert(jobs).values(
    {
        **{n: bindparam(n) for n in ("id", "api_key_id", "endpoint", "status", "request")},
        "created_at": bindparam("created_at"),
        "attempts": 0,
    }
)


def _replay_first(batch: Batch) -> None:
    """Send what waits before a refusal leaves: a key found there already (Replay)
    wins over the refusal; any other outcome leaves the refusal to be raised."""
    try:
        batch.send()
    except idempotency_sql.Replay:
        raise
    except Exception:  # noqa: BLE001, S110 - the refusal being raised says it all
        pass


class _FastQuery:
    """A SELECT compiled once for the dialect and run on a bare DBAPI cursor.

    The status poll is the hottest path in the service; going through a pooled
    DBAPI connection directly costs ~40 us against ~250 us for a Core execute
    (bench/bench_poll.py). The SQL is still generated by SQLAlchemy for whichever
    dialect is in use, so nothing here is SQLite-specific.

    The connection is checked out for the one statement and returned at once.
    (It used to be pinned per thread for SQLite to save ~25 us; every thread of
    the API's pool then kept one of the pool's 15 connections for life, and the
    16th thread's write waited 30 s for a connection and answered 500: issue 17.)
    """

    def __init__(self, engine: Engine, stmt: Any, json_columns: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.OperationalError
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positional = compiled.positiontup
        self.json_columns = json_columns

    def one(self, **params: Any) -> dict[str, Any] | None:
        args: Any = [params[name] for name in self.positional] if self.positional else params
        with busy_as_503(self.sqlite):
            try:
                raw = self.engine.raw_connection()
                try:
                    if not self.sqlite:
                        # One statement needs no transaction: in autocommit psycopg sends
                        # the SELECT alone, one round trip instead of BEGIN, SELECT and
                        # ROLLBACK (three). SQLite's reads are autocommit already.
                        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
                    cur = raw.cursor()
                    cur.execute(self.sql, args)
                    row = cur.fetchone()
                    names = [d[0] for d in cur.description] if row is not None else []
                    cur.close()
                    if not self.sqlite:
                        raw.driver_connection.autocommit = False  # type: ignore[union-attr]
                except self.dbapi_error as exc:
                    if self.engine.dialect.is_disconnect(exc, raw.dbapi_connection, None):  # type: ignore[arg-type]
                        # as SQLAlchemy's own paths do (the pool has no pre-ping): every
                        # pooled connection older than this one's failure is replaced
                        self.engine.pool._invalidate(raw, exc)
                    else:
                        self._pool_safely(raw)
                    raise
                except BaseException:
                    self._pool_safely(raw)
                    raise
                finally:
                    raw.close()
            except self.dbapi_error as exc:
                # A bare DBAPI connection raises the driver's own errors (connection
                # refused, server shutting down), which SQLAlchemy wraps only on its
                # own paths: wrapped here, busy_as_503 sees them as it sees those.
                raise sa_exc.OperationalError(self.sql, args, exc) from exc
        return self._values(names, row)

    def _pool_safely(self, raw: Any) -> None:
        """After a failed read, a connection goes back to the pool only as the store's
        other paths expect it: out of autocommit. One that cannot be switched back is
        invalidated, never pooled to run a later write's statements one by one."""
        if self.sqlite or raw.dbapi_connection is None:
            return
        try:
            raw.driver_connection.autocommit = False
        except Exception:
            raw.invalidate()

    def _values(self, names: list[str], row: Any) -> dict[str, Any] | None:
        if row is None:
            return None
        values = dict(zip(names, row, strict=True))
        for col in self.json_columns:
            if isinstance(values.get(col), str | bytes):
                values[col] = orjson.loads(values[col])
        return values


class SqlJobStore:
    """The JobStore Protocol (base.py) over SQLAlchemy Core: SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, timeout: float = DEFAULT_DB_TIMEOUT) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite on local disk answers a primary-key lookup in microseconds: cheaper to
        # run inline than to hop to a thread pool. A networked database must not
        # block an event loop.
        self.inline_reads = self.is_sqlite
        # PostgreSQL: the insert's transaction sends the doorbell's NOTIFY itself, so a
        # submit is one transaction, and workers wake when the row becomes visible.
        self.rings_on_insert = not self.is_sqlite
        self.timeout = timeout
        # SQLite has one writer at a time anyway; queueing this process's writers on a
        # lock (FIFO-ish, bounded wait) instead of on SQLite's busy handler (sleep and
        # retry, unfair) keeps each write's wait short and predictable under load.
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._get_job = _FastQuery(engine, _GET_JOB, ("request", "result"))
        self._get_view = _FastQuery(engine, _GET_VIEW, ("result",))
        self._key_by_hash = _FastQuery(engine, _KEY_BY_HASH)

    def doorbell(self, data_dir: Path) -> Doorbell:
        """FIFO in the data dir on SQLite (one machine), LISTEN/NOTIFY on PostgreSQL
        (every machine on the database); plain polling if it cannot be set up."""
        try:
            if not self.is_sqlite:
                return PgDoorbell(self.engine)
            return FifoDoorbell(data_dir / "run" / "doorbell")
        except (OSError, AttributeError) as exc:  # AttributeError: no os.mkfifo (not POSIX)
            log.warning("doorbell unavailable (%s); idle workers poll", exc)
        return Silent()

    def change_feed(self) -> ChangeFeed:
        return events.change_feed(self.engine)

    def _write(self) -> _WriteTx:
        return _WriteTx(self)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for a read, with saturation reported as StoreBusyError."""
        with busy_as_503(self.is_sqlite), self.engine.connect() as conn:
            yield conn

    # -- operations (docs/operations.md) ---------------------------------------
    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(select(1)).scalar_one()

    def count_jobs(self, in_flight: bool) -> dict[tuple[str, str], int]:
        states = jobs.c.status.in_([JobStatus.PENDING.value, JobStatus.PROCESSING.value])
        stmt = (
            select(jobs.c.status, jobs.c.endpoint, func.count())
            .where(states if in_flight else ~states)
            .group_by(jobs.c.status, jobs.c.endpoint)
        )
        with self.read() as conn:
            rows = conn.execute(stmt).all()
        return {(str(status), str(endpoint)): int(n) for status, endpoint, n in rows}

    # -- keys ---------------------------------------------------------------
    def add_key(
        self, key_id: str, name: str, key_hash: str, prefix: str, simulate: str | None = None
    ) -> None:
        with self._write() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    name=name,
                    key_hash=key_hash,
                    prefix=prefix,
                    created_at=now_ms(),
                    simulate=simulate,
                )
            )

    def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        return self._key_by_hash.one(key_hash=key_hash)

    def list_keys(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
        return [dict(r._mapping) for r in rows]

    def revoke_key(self, key_id_or_prefix: str) -> int:
        with self._write() as conn:
            res = conn.execute(
                update(api_keys)
                .where(
                    or_(api_keys.c.id == key_id_or_prefix, api_keys.c.prefix == key_id_or_prefix)
                )
                .where(api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
        return int(res.rowcount)

    def get_key_limits(self, key_id: str) -> KeyLimits:
        with self.read() as conn:
            return limits_sql.read(conn, key_id)

    def set_key_limits(self, key_id: str, **overrides: int | float | None) -> None:
        with self._write() as conn:
            limits_sql.set_overrides(conn, key_id, overrides)

    # -- jobs ---------------------------------------------------------------
    def create_job(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str | None = None,
        *,
        admit: Admission | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> Job:
        """Insert a pending job; ``idempotency`` (idempotency.py), then ``admit`` run
        first in the same write transaction."""
        job_id = job_id or str(uuid.uuid4())
        try:
            return self._create(api_key_id, endpoint, request, job_id, admit, idempotency)
        except idempotency_sql.Replay:
            pass  # the key was there already: again, with the key's claim first
        return self._create(
            api_key_id, endpoint, request, job_id, admit, idempotency, claim_first=True
        )

    def _create(
        self,
        api_key_id: str,
        endpoint: str,
        request: dict[str, Any],
        job_id: str,
        admit: Admission | None,
        idempotency: IdempotencyClaim | None,
        claim_first: bool = False,
    ) -> Job:
        created_at = now_ms()
        values = dict(
            id=job_id,
            api_key_id=api_key_id,
            endpoint=endpoint,
            status=JobStatus.PENDING.value,
            request=request,
            created_at=created_at,
        )
        with self._write() as conn:
            view = _AdmissionView(conn, self.is_sqlite, job_id)
            batch = view.batch
            if idempotency is not None:
                if claim_first:
                    named = idempotency_sql.claim(conn, idempotency, job_id)
                    if named is not None:
                        return named
                else:
                    idempotency_sql.claim_later(batch, idempotency, job_id)
            if admit is not None:
                try:
                    admit(view, api_key_id, endpoint, request)
                except Exception:
                    if batch.pending():
                        _replay_first(batch)  # a retried key answers its job, not a refusal
                    raise
            batch.add(_INSERT_JOB, values, json=("request",))
            if self.rings_on_insert:
                batch.add(_RING, {})
            batch.send(commit=True)
        # the row is exactly what was inserted: no second round trip to read it back
        return Job(
            id=job_id,
            api_key_id=api_key_id,
            endpoint=endpoint,
            status=JobStatus.PENDING,
            request=request,
            created_at=created_at,
            started_at=None,
            completed_at=None,
            expires_at=None,
            result=None,
            error_type=None,
            error_message=None,
            progress=None,
            attempts=0,
            lease_owner=None,
            lease_expires_at=None,
        )

    def list_jobs(self, query: ListQuery) -> list[JobView]:
        with self.read() as conn:
            return listing.list_jobs(conn, query)

    def delete_expired_idempotency_keys(self, now: int) -> int:
        with self._write() as conn:
            return idempotency_sql.delete_expired(conn, now)

    def get(self, job_id: str) -> Job | None:
        values = self._get_job.one(job_id=job_id)
        if values is None:
            return None
        values["status"] = JobStatus(values["status"])
        return Job(**values)

    def view(self, job_id: str) -> JobView | None:
        """The status poll's read: the columns of JobView only, never the request."""
        values = self._get_view.one(job_id=job_id)
        if values is None:
            return None
        values["status"] = JobStatus(values["status"])
        return JobView(**values)

    def versions(self, ids: list[str]) -> dict[str, int]:
        with self.read() as conn:
            return events.versions(conn, ids)

    def claim(
        self, owner: str, lease_seconds: float, max_attempts: int, *, retention_ms: int
    ) -> Job | None:
        """Take the oldest runnable job: pending, or processing with an expired lease.

        A reclaimed job whose attempts are used up is failed instead, and the
        search goes on.
        """
        while True:
            now = now_ms()
            expires = now + int(lease_seconds * 1000)
            with self._write() as conn:
                row: Any
                if self.is_sqlite:
                    row = conn.execute(
                        select(jobs)
                        .where(
                            or_(
                                jobs.c.status == JobStatus.PENDING.value,
                                (jobs.c.status == JobStatus.PROCESSING.value)
                                & (jobs.c.lease_expires_at < now),
                            )
                        )
                        .order_by(jobs.c.created_at)
                        .limit(1)
                    ).first()
                else:  # lock and take in one statement, sent with the COMMIT (pg_claim)
                    row = Batch(conn).send(
                        PG_CLAIM,
                        dict(
                            now=now,
                            owner=owner,
                            lease_expires_at=expires,
                            max_attempts=max_attempts,
                        ),
                        commit=True,
                    )
                if not row:
                    return None
                job = _job(row)
                if job.attempts >= max_attempts:
                    # PostgreSQL committed already: the row is no longer locked, and
                    # _finish's compare-and-set on (status, attempts) is the guard
                    self._finish(
                        conn,
                        job,
                        JobStatus.FAILED,
                        now,
                        retention_ms=retention_ms,
                        error=("api_error", LOST_MESSAGE.format(n=job.attempts)),
                    )
                    continue
                check_transition(job.status, JobStatus.PROCESSING)
                claimed = replace(
                    job,
                    status=JobStatus.PROCESSING,
                    lease_owner=owner,
                    lease_expires_at=expires,
                    attempts=job.attempts + 1,
                    started_at=job.started_at or now,
                    version=job.version + 1,  # the row is locked: exact
                )
                if self.is_sqlite:
                    conn.execute(
                        update(jobs)
                        .where(jobs.c.id == job.id)
                        .values(
                            status=claimed.status.value,
                            lease_owner=claimed.lease_owner,
                            lease_expires_at=claimed.lease_expires_at,
                            attempts=claimed.attempts,
                            started_at=claimed.started_at,
                            version=events.BUMP,
                        )
                    )
            # the row is what this locked transaction wrote: no second round trip
            return claimed

    def heartbeat(
        self, job_id: str, owner: str, lease_seconds: float, progress: float | None = None
    ) -> bool:
        """Renew the lease; False when the job is no longer ours (reclaimed or finished)."""
        values: dict[str, Any] = {"lease_expires_at": now_ms() + int(lease_seconds * 1000)}
        if progress is not None:
            values["progress"] = progress
            values["version"] = events.progress_bump(progress)
        stmt = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.lease_owner == owner,
                jobs.c.status == JobStatus.PROCESSING.value,
            )
            .values(**values)
        )
        with self._write() as conn:
            res = conn.execute(stmt if progress is None else events.publishing(conn, stmt))
        return bool(res.rowcount)

    def _finish(
        self,
        conn: Connection,
        job: Job,
        status: JobStatus,
        now: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        retention_ms: int | None = None,
    ) -> bool:
        check_transition(job.status, status)
        values: dict[str, Any] = dict(
            status=status.value,
            completed_at=now,
            lease_owner=None,
            lease_expires_at=None,
            result=result,
            version=events.BUMP,
        )
        if retention_ms is not None:
            values["expires_at"] = now + retention_ms
        if error:
            values["error_type"], values["error_message"] = error
        if status == JobStatus.COMPLETED:
            values["progress"] = 1.0
        res = conn.execute(
            events.publishing(
                conn,
                update(jobs)
                .where(
                    jobs.c.id == job.id,
                    jobs.c.status == job.status.value,
                    jobs.c.attempts == job.attempts,
                )
                .values(**values),
            )
        )
        done = bool(res.rowcount)
        if done:  # the job ended here, once: its credits settle in the same transaction
            ledger.settle(conn, job.id, status)
        if done:  # webhooks: the job's terminal message commits with its end
            deliveries.enqueue(conn, job, status, now)
        return done

    def finish(
        self,
        job_id: str,
        owner: str | None,
        status: JobStatus,
        retention_ms: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        claimed: Job | None = None,
    ) -> bool:
        """Move a job to a terminal status; False if another process got there first."""
        with self._write() as conn:
            if claimed is not None and claimed.id == job_id and claimed.lease_owner == owner:
                # The owner's own claim: no read first. _finish's compare-and-set on
                # (status, attempts) refuses it if the job moved on since (every claim
                # adds an attempt; release, abandon and the reaper change the status).
                job = claimed
            else:
                row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
                if row is None:
                    return False
                job = _job(row)
            if owner is not None and job.lease_owner != owner:
                return False
            if job.terminal:
                return False
            now = now_ms()
            if not self.is_sqlite and not deliveries.wanted(job, status):
                check_transition(job.status, status)
                params = pg_finish.finish_params(
                    job.id,
                    job.status,
                    job.attempts,
                    status,
                    now,
                    result=result,
                    error=error,
                    retention_ms=retention_ms,
                )
                ended = Batch(conn).send(pg_finish.FINISH, params, commit=True, json=("result",))
                return bool(ended["done"])
            return self._finish(
                conn, job, status, now, result=result, error=error, retention_ms=retention_ms
            )

    def release(self, job_id: str, owner: str) -> bool:
        """Give a job back to the queue (runner crashed, worker stopping): processing -> pending."""
        with self._write() as conn:
            check_transition(JobStatus.PROCESSING, JobStatus.PENDING)
            res = conn.execute(
                events.publishing(
                    conn,
                    update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.lease_owner == owner,
                        jobs.c.status == JobStatus.PROCESSING.value,
                    )
                    .values(
                        status=JobStatus.PENDING.value,
                        lease_owner=None,
                        lease_expires_at=None,
                        version=events.BUMP,
                    ),
                )
            )
        return bool(res.rowcount)

    def fail_exhausted(self, max_attempts: int, retention_ms: int) -> int:
        """Fail jobs whose lease expired with no attempts left, even with no worker running."""
        now = now_ms()
        n = 0
        with self._write() as conn:
            rows = conn.execute(
                select(jobs).where(
                    jobs.c.status == JobStatus.PROCESSING.value,
                    jobs.c.lease_expires_at < now,
                    jobs.c.attempts >= max_attempts,
                )
            ).all()
            for row in rows:
                n += self._finish(
                    conn,
                    _job(row),
                    JobStatus.FAILED,
                    now,
                    retention_ms=retention_ms,
                    error=("api_error", LOST_MESSAGE.format(n=row.attempts)),
                )
        return n

    def expired_ids(self, limit: int = 500) -> list[str]:
        with self.read() as conn:
            rows = conn.execute(
                select(jobs.c.id).where(jobs.c.expires_at < now_ms()).limit(limit)
            ).all()
        return [r.id for r in rows]

    def delete_jobs(self, ids: list[str]) -> int:
        if not ids:
            return 0
        with self._write() as conn:
            res = conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
        return int(res.rowcount)

    # -- webhook deliveries (SQL in deliveries.py; docs/webhooks.md) ----------
    def set_key_webhook(
        self, key_id: str, url: str | None, secret: str | None = None
    ) -> dict[str, Any] | None:
        with self._write() as conn:
            return deliveries.set_key_webhook(conn, key_id, url, secret)

    def claim_deliveries(self, owner: str, limit: int, lease_seconds: float) -> list[Delivery]:
        with self._write() as conn:
            return deliveries.claim(conn, owner, limit, int(lease_seconds * 1000), now_ms())

    def record_delivery(self, delivery_id: str, owner: str, outcome: DeliveryOutcome) -> bool:
        with self._write() as conn:
            return deliveries.record(conn, delivery_id, owner, outcome)

    def deliveries_of(self, job_id: str) -> list[Delivery]:
        with self.read() as conn:
            return deliveries.of_job(conn, job_id)

    def webhook_secret(self, api_key_id: str) -> str | None:
        with self.read() as conn:
            return deliveries.secret(conn, api_key_id)

    def purge_deliveries(self, ended_before: int) -> int:
        with self._write() as conn:
            return deliveries.purge(conn, ended_before)

    # -- uploads ------------------------------------------------------------
    def add_upload(self, upload: Upload) -> None:
        with self._write() as conn:
            conn.execute(insert(uploads).values(**upload.__dict__))

    def get_upload(self, upload_id: str) -> Upload | None:
        if not valid_upload_id(upload_id):
            return None
        with self.read() as conn:
            row = conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()
        if row is None:
            return None
        m = row._mapping
        return Upload(**{k: m[k] for k in Upload.__dataclass_fields__})

    def complete_upload(self, upload_id: str, size: int, content_type: str | None) -> bool:
        now = now_ms()
        with self._write() as conn:
            res = conn.execute(
                update(uploads)
                .where(
                    uploads.c.id == upload_id,
                    uploads.c.completed_at.is_(None),
                    uploads.c.url_expires_at > now,
                )
                .values(completed_at=now, size=size, content_type=(content_type or None))
            )
        return bool(res.rowcount)

    def expired_upload_ids(self, limit: int = 500) -> list[str]:
        with self.read() as conn:
            rows = conn.execute(
                select(uploads.c.id).where(uploads.c.expires_at < now_ms()).limit(limit)
            ).all()
        return [r.id for r in rows]

    def delete_uploads(self, ids: list[str]) -> int:
        if not ids:
            return 0
        with self._write() as conn:
            res = conn.execute(delete(uploads).where(uploads.c.id.in_(ids)))
        return int(res.rowcount)

    # -- credits (jobs/store/ledger.py, docs/credits.md) ---------------------
    def top_up_credits(self, api_key_id: str, amount: int, note: str | None = None) -> Credits:
        with self._write() as conn:
            return ledger.top_up(conn, api_key_id, amount, note)

    def credits(self, api_key_id: str) -> Credits:
        with self.read() as conn:
            return ledger.credits(conn, api_key_id)

    def credit_history(
        self, api_key_id: str, limit: int = 50, before: int | None = None
    ) -> list[LedgerEntry]:
        with self.read() as conn:
            return ledger.history(conn, api_key_id, limit, before)


_KEEPS_PROTOCOL: type[BaseJobStore] = SqlJobStore  # mypy checks the class against base.JobStore
JobStore = SqlJobStore
"""The old name of SqlJobStore; ``base.JobStore`` is the Protocol both stores keep."""


class _AdmissionView:
    """Admission reads inside the submit's write transaction (``base.AdmissionView``).

    SQLite: the transaction began with BEGIN IMMEDIATE, so it is the database's
    only writer until it commits; nothing more is needed. PostgreSQL: each key is
    serialised by a transaction-scoped advisory lock, taken before the first read
    of that key and held until commit, so a second submit of the key waits for
    the first one's insert (bounded by lock_timeout, then StoreBusyError). The SQL
    is in limits.py.
    """

    def __init__(self, conn: Connection, sqlite: bool, job_id: str) -> None:
        self.conn = conn
        self.sqlite = sqlite
        self.job_id = job_id  # the job being admitted
        self.locked: set[str] = set()
        # what need not be sent at once waits here for the next statement that must be
        # (batch.py: one round trip on PostgreSQL); the job's INSERT sends the rest
        self.batch = Batch(conn)

    def _lock(self, api_key_id: str) -> None:
        if self.sqlite or api_key_id in self.locked:
            return
        lock_id = limits_sql.lock_id(limits_sql.key_lock(api_key_id))
        self.batch.add(limits_sql.LOCK, {"lock_id": lock_id})
        self.locked.add(api_key_id)

    def _sync(self) -> None:
        """Send what waits, before a statement run straight on the connection."""
        if self.batch.pending():
            self.batch.send()

    def unfinished_jobs(self, api_key_id: str, cap: int | None = None) -> int:
        self._lock(api_key_id)
        self._sync()
        return limits_sql.unfinished(self.conn, api_key_id, cap)

    def limits_state(
        self, api_key_id: str, default_cap: int, pending_cap: int, *, serialise: bool = True
    ) -> LimitsState:
        lock = None
        if serialise and not self.sqlite and api_key_id not in self.locked:
            lock = limits_sql.key_lock(api_key_id)  # taken with the read, one round trip
        own, unfinished, pending = limits_sql.snapshot(
            self.conn, api_key_id, default_cap, pending_cap, lock, self.batch
        )
        if lock is not None:
            self.locked.add(api_key_id)
        if not self.sqlite and limits_sql.near_queue_cap(pending, pending_cap):
            self._sync()
            limits_sql.lock_queue(self.conn)  # near the cap: one submit at a time
            pending = limits_sql.pending(self.conn, pending_cap)
        return LimitsState(own, unfinished, pending)

    def save_tokens(self, api_key_id: str, tokens: float, at_ms: int) -> None:
        self._lock(api_key_id)
        params = {"api_key_id": api_key_id, "tokens": tokens, "tokens_at": at_ms}
        self.batch.add(limits_sql.SAVE_TOKENS[self.conn.dialect.name], params)

    def hold_credits(self, api_key_id: str, amount: int, refusal: Exception) -> None:
        # a conditional UPDATE of the key's balance row: atomic on its own
        ledger.hold_later(self.batch, api_key_id, self.job_id, amount, refusal)


class _WriteTx:
    """A connection in a write transaction (BEGIN IMMEDIATE on SQLite), committed on success.

    Every wait on the way in is bounded by the store's timeout; a saturated
    database, inside or on the way in, leaves as StoreBusyError.
    """

    def __init__(self, store: SqlJobStore) -> None:
        self.store = store
        self.conn: Connection | None = None
        self.locked = False

    def __enter__(self) -> Connection:
        lock = self.store._write_lock
        if lock is not None:
            if not lock.acquire(timeout=self.store.timeout):
                raise StoreBusyError()
            self.locked = True
        try:
            with busy_as_503(self.store.is_sqlite):
                self.conn = self.store.engine.connect()
                self.conn.info["write"] = True
                self.conn.begin()
        except BaseException:
            self._release()
            raise
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.conn is not None
        try:
            with busy_as_503(self.store.is_sqlite):
                if exc_type is None:
                    self.conn.commit()
                else:
                    self.conn.rollback()
                    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError) and is_busy(
                        exc, self.store.is_sqlite
                    ):
                        raise StoreBusyError() from exc
        finally:
            self._release()

    def _release(self) -> None:
        if self.conn is not None:
            if not self.conn.invalidated:  # .info of a lost connection would reconnect
                self.conn.info.pop("write", None)
            self.conn.close()
            self.conn = None
        if self.locked:
            self.locked = False
            assert self.store._write_lock is not None
            self.store._write_lock.release()
