"""The doorbell: submitting a job wakes idle workers instead of leaving it to their next poll.

Idle workers still poll the store every ``poll_interval`` (0.5 s by default); the
doorbell is only a hint, so a ring that gets lost costs at most one poll and
correctness never depends on it. What it saves is the wait between a submission
and its claim: on average half the poll interval, which is most of the server's
overhead on a short job.

    SQLite (one machine):  a FIFO at ``<data_dir>/run/doorbell``. ring() writes a byte
                           without blocking (nobody listening, or the pipe full: fine,
                           dropped); every waiting worker selects on it.
    PostgreSQL:            ``NOTIFY ltxserve_jobs`` / ``LISTEN ltxserve_jobs``, which
                           reaches workers on every machine that shares the database.
                           Only one idle worker answers a ring: the one holding the
                           leader lock (below).

Waking every idle worker for each job (a thundering herd) costs a wake-up and an
empty claim per idle worker per job: with 4 workers on the bench's 2 cores that CPU
halved the rate at which one client could submit (bench/README.md). On PostgreSQL
the idle workers therefore queue on a session advisory lock; its holder, the leader,
is the only one that LISTENs and waits for rings, and the others wait for the lock.
A leader that takes a job steps down (UNLISTEN and unlock), and PostgreSQL grants
the lock to the next idle worker at once: it LISTENs and claims once (a ring sent
before its LISTEN reached nobody), then waits as the leader. So a job wakes two
workers at most, however many are idle; a dead leader's lock goes with its
connection.

A short job needs no successor, though. A leader whose claim took a job that rang
keeps the lead while it works (``after_claim``), and steps down only when the job
turns out not to be short (``hand_over``: the worker calls it once a job has run
``LEAD_SECONDS``, and before fetching inputs) or when it sees a backlog: a claim
that took a job no ring was heard for, or one that left two or more jobs waiting
that would wait past ``LEAD_SECONDS`` for it at its pace (the time between its last
two claims while it worked). Rings are counted per job: rings heard while it worked
stay on its socket and are counted at its next claim; a job taken uses one up, and
the rest (jobs left waiting) carry over to the claim after; a ring heard just after
the claim that took its job is that job's (its row can be seen before its NOTIFY
arrives, more so on a busy machine; bench/README.md, "eighth pass"). Jobs left
waiting therefore wait at most about ``LEAD_SECONDS`` longer than they would for
another worker. A step-down per job was three round trips, two woken workers and an
empty claim on every job of a stream of short ones, and stepping down for one job
left waiting still made one in five (bench/README.md, "sixth pass").

Only the leader listens because every NOTIFY in a database, on any channel, signals
every backend of that database that LISTENs (PostgreSQL's async.c), and each one
wakes to read the queue: the ring and the two status events of every job (claim,
finish) times every listening worker. Six idle listeners on another channel took a
one-worker run from ~370 to ~210 jobs/s, PostgreSQL's CPU per job from 1.3 to 2.4 ms
(bench/bench_cpu.py --listeners; bench/README.md, "fifth pass").

Which one a deployment gets is the store's choice (``JobStore.doorbell``). Any
failure to set a doorbell up leaves plain polling (logged once); no error here
ever reaches a request or a job.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
CHANNEL = "ltxserve_jobs"

# A leader keeps the lead through a job this short, and hands it over once the job
# runs longer (worker.py) or once the jobs it left waiting would wait longer than
# this for it (``after_claim``): a job that comes meanwhile waits at most about this
# long more than it would for another worker.
LEAD_SECONDS = 0.01


class Doorbell(Protocol):
    """What a worker waits on; the claim hooks default to nothing (a doorbell whose
    rings wake every waiter needs no bookkeeping)."""

    def ring(self) -> None:
        """Tell waiting workers there is work (never blocks, never raises)."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a ring; True when one came."""

    def before_claim(self) -> None:
        """Forget the rings heard so far: the claim about to run sees their jobs."""
        return None

    def after_claim(self, took: bool) -> None:
        """After a claim; ``took``: it leased a job, so this worker is no longer idle."""
        return None

    def hand_over(self) -> None:
        """The job at hand is not a short one: let another idle worker answer rings."""
        return None

    def close(self) -> None: ...


class Silent(Doorbell):
    """No doorbell: waiting is sleeping, ringing does nothing."""

    def ring(self) -> None:
        pass

    def wait(self, timeout: float) -> bool:
        time.sleep(max(0.0, timeout))
        return False

    def close(self) -> None:
        pass


class FifoDoorbell(Doorbell):
    """A named pipe shared by the processes of one data directory (every waiter wakes:
    one machine's few workers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            if not stat.S_ISFIFO(path.stat().st_mode):
                raise OSError(f"{path} exists and is not a FIFO") from None

    def ring(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody is listening; ENOENT: removed
            return
        try:
            os.write(fd, b"j")
        except OSError:  # EAGAIN: full of unread rings, which is as good as one more
            pass
        finally:
            os.close(fd)

    def wait(self, timeout: float) -> bool:
        if self._fd is None:
            # O_RDWR: this process then counts as a writer too, so the pipe never reads
            # as end-of-file (always "ready") between two rings
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        rang = False
        while True:  # drain: several rings wake a waiter once
            try:
                rang = bool(os.read(self._fd, 4096)) or rang
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return rang
                raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# The leader lock, in the two-integer key space of advisory locks: PostgreSQL never
# confuses it with the one-integer keys of the store's transaction locks.
LEADER_LOCK = "1819572339, 1684169836"  # b"ltxs", b"dbll"

# Queue for the leader lock up to lock_timeout and LISTEN once it is held, in one
# message. PL/pgSQL catches the timeout, so nothing is logged; the session lock taken
# inside the block's subtransaction stays held when it commits, and so does the LISTEN.
# The answer rides in a session setting.
_LEAD = f"""SET lock_timeout = {{ms}};
DO $$ BEGIN
  PERFORM pg_advisory_lock({LEADER_LOCK});
  EXECUTE 'LISTEN {CHANNEL}';
  PERFORM set_config('ltxserve.leading', 'on', false);
EXCEPTION WHEN lock_not_available THEN
  PERFORM set_config('ltxserve.leading', 'off', false);
END $$;
SELECT current_setting('ltxserve.leading')"""


class PgDoorbell(Doorbell):
    """LISTEN/NOTIFY on the job store's PostgreSQL, answered by the leader only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        url = make_url(engine.url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._conn: Any = None
        self._leading = False
        self._working = False  # leading through a job (after_claim)
        self._rings = 0  # heard since the last claim
        self._claimed_at = 0.0  # when the last claim returned (time.monotonic)
        self._per_job = LEAD_SECONDS  # a job's time at the lead, as last seen

    def ring(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '')")
                conn.commit()
        except Exception as exc:  # noqa: BLE001 - a hint only; workers still poll
            log.warning("doorbell: NOTIFY failed: %s", exc)

    def wait(self, timeout: float) -> bool:
        import psycopg

        deadline = time.monotonic() + max(0.0, timeout)
        try:
            if self._conn is None:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._working = False
            if not self._leading:
                # a new leader claims once: nobody listened between the last leader's
                # step-down and this LISTEN
                return self._lead(timeout)
            rang = False
            left = max(0.0, deadline - time.monotonic())
            for _ in self._conn.notifies(timeout=left, stop_after=1):
                rang = True
            if rang:  # drain: several rings wake a waiter once
                self._rings += 1 + self._heard()
            return rang
        except psycopg.Error as exc:
            log.warning("doorbell: LISTEN failed (%s); polling", exc)
            self.close()
            Silent().wait(max(0.0, deadline - time.monotonic()))
            return False

    def _lead(self, timeout: float) -> bool:
        """Queue for the leader lock up to ``timeout``; True once this worker holds it
        (and LISTENs).

        The wait's timeout is caught on the server (``_LEAD``): a lock_timeout that
        reached the client was an ERROR in PostgreSQL's log, four a second for every
        idle worker that does not lead (the idle loop waits in 0.25 s slices)."""
        ms = max(1, int(timeout * 1000))
        cur = self._conn.execute(_LEAD.format(ms=ms))
        while cur.nextset():  # the answer is the last statement's
            pass
        row = cur.fetchone()
        self._leading = row is not None and row[0] == "on"
        return self._leading

    def _heard(self) -> int:
        """Read the rings that have arrived (on the socket), without blocking: how many.
        A submission rings once, in a transaction of its own, and PostgreSQL folds
        only a transaction's identical notifications into one."""
        return sum(1 for _ in self._conn.notifies(timeout=0.0))

    def before_claim(self) -> None:
        if self._conn is None:
            return
        try:
            self._rings += self._heard()
        except Exception as exc:  # noqa: BLE001 - a hint only; the next wait reconnects
            log.warning("doorbell: reading rings failed (%s)", exc)
            self.close()

    def after_claim(self, took: bool) -> None:
        rings = self._rings
        if took and self._leading and rings == 0:
            self.before_claim()  # the ring of the job just taken can come after its row
            rings = self._rings
        # a job taken used up one ring; the rest are jobs still waiting (a claim that
        # found nothing: their jobs went to other workers)
        self._rings = waiting = max(0, rings - 1) if took else 0
        now = time.monotonic()
        if self._working:  # what a job costs this leader: the time since its last claim
            self._per_job = now - self._claimed_at
        self._claimed_at = now
        self._working = (
            took
            and self._leading
            and rings >= 1
            and (waiting <= 1 or waiting * self._per_job <= LEAD_SECONDS)
        )
        if took and not self._working:  # a backlog: let more workers in
            self._step_down()

    def hand_over(self) -> None:
        if self._working:
            self._working = False
            self._step_down()

    def _step_down(self) -> None:
        if not self._leading:
            return
        self._leading = False
        self._rings = 0  # a leader's count only: the next one hears its own rings
        try:  # the next idle worker in the lock's queue leads (and listens) from now
            self._conn.execute(f"UNLISTEN {CHANNEL}; SELECT pg_advisory_unlock({LEADER_LOCK})")
        except Exception as exc:  # noqa: BLE001 - closing the connection releases it too
            log.warning("doorbell: stepping down failed (%s)", exc)
            self.close()

    def close(self) -> None:
        self._leading = self._working = False
        self._rings = 0
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
