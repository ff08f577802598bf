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


class Doorbell(Protocol):
    def ring(self) -> None:
        """Tell waiting workers there is work (never blocks, never raises)."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a ring; True when one came."""

    def close(self) -> None: ...


class Silent:
    """No doorbell: waiting is sleeping, ringing does nothing."""

    def ring(self) -> None:
        pass

    def wait(self, timeout: float) -> bool:
        time.sleep(max(0.0, timeout))
        return False

    def close(self) -> None:
        pass


class FifoDoorbell:
    """A named pipe shared by the processes of one data directory."""

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


class PgDoorbell:
    """LISTEN/NOTIFY on the job store's PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        url = make_url(engine.url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._conn: Any = None

    def ring(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '')")
                conn.commit()
        except Exception as exc:  # noqa: BLE001 - a hint only; workers still poll
            log.warning("doorbell: NOTIFY failed: %s", exc)

    def wait(self, timeout: float) -> bool:
        import psycopg

        try:
            if self._conn is None:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
                self._conn.execute(f"LISTEN {CHANNEL}")
            rang = False
            for _ in self._conn.notifies(timeout=max(0.0, timeout), stop_after=1):
                rang = True
            if rang:  # drain: several rings wake a waiter once
                for _ in self._conn.notifies(timeout=0.0):
                    pass
            return rang
        except psycopg.Error as exc:
            log.warning("doorbell: LISTEN failed (%s); polling", exc)
            self.close()
            Silent().wait(timeout)
            return False

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
