"""Change feeds: how an API process hears that a job's status or progress moved.

Live events (api/events.py) may hold hundreds of client streams in one API process;
none of them may hold a database connection or a thread of its own. One hub per
API process (api/event_hub.py) listens on one feed and fans out to its streams:

    PostgreSQL:  every write that bumps a job's version also runs
                 ``pg_notify('ltxserve_job_events', '<id>:<version>')`` inside its
                 transaction (jobs/store/events.py); PostgreSQL delivers it at commit
                 to the one ``LISTEN`` connection of every API process, on every
                 machine. A channel of its own: the workers' doorbell
                 (``ltxserve_jobs``) is never rung by a progress report.
    SQLite:      one machine, nothing to listen to across processes: the feed only
                 paces the hub, which reads the versions of the jobs it watches in
                 one batched query per tick (``LTXSERVE_EVENTS_POLL_SECONDS``).
    Memory:      one process: the store tells its feeds directly.

Like the doorbell, a feed is a hint: a notification lost while the listener was
reconnecting is caught by the hub's periodic recheck of every watched job, and a
change is never lost, only late.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)
CHANNEL = "ltxserve_job_events"

Change = tuple[str, int]
"""(job id, the job's version after the change)."""


class ChangeFeed(Protocol):
    def wait(self, timeout: float) -> list[Change] | None:
        """Block up to ``timeout`` seconds for changes; ``[]`` when none came. None
        when the feed cannot say which jobs changed (it polls, or it may have missed
        notifications): the caller rechecks every job it watches."""
        ...

    def close(self) -> None:
        """Called by the thread that waits, once it is done waiting."""
        ...


def parse(payload: str) -> Change | None:
    job_id, _, version = payload.rpartition(":")
    return (job_id, int(version)) if job_id and version.isdigit() else None


class PollFeed:
    """No notifications: every wait is a tick after which the caller rechecks all."""

    def wait(self, timeout: float) -> list[Change] | None:
        time.sleep(max(0.0, timeout))
        return None

    def close(self) -> None:
        pass


class PgChangeFeed:
    """``LISTEN ltxserve_job_events`` on a connection of its own (not from the pool)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: Any = None

    def wait(self, timeout: float) -> list[Change] | None:
        import psycopg

        try:
            fresh = self._conn is None
            if fresh:
                self._conn = psycopg.connect(self._conninfo, autocommit=True)
                self._conn.execute(f"LISTEN {CHANNEL}")
            changes: list[Change] = []
            for note in self._conn.notifies(timeout=max(0.0, timeout), stop_after=1):
                changes.extend(c for c in [parse(note.payload)] if c is not None)
            if changes:  # take what else is queued: one wake-up for a burst
                for note in self._conn.notifies(timeout=0.0):
                    changes.extend(c for c in [parse(note.payload)] if c is not None)
            # a new connection may have missed changes made before its LISTEN
            return None if fresh else changes
        except psycopg.Error as exc:
            log.warning("job events: LISTEN failed (%s); reconnecting", exc)
            self.close()
            time.sleep(min(1.0, max(0.0, timeout)))
            return None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class LocalFeed:
    """Changes told by a store in this process (memory store)."""

    def __init__(self, feeds: set[LocalFeed]) -> None:
        self._feeds = feeds
        self._cond = threading.Condition()
        self._changes: list[Change] = []
        feeds.add(self)

    def push(self, job_id: str, version: int) -> None:
        with self._cond:
            self._changes.append((job_id, version))
            self._cond.notify_all()

    def wait(self, timeout: float) -> list[Change] | None:
        with self._cond:
            if not self._changes:
                self._cond.wait(max(0.0, timeout))
            changes, self._changes = self._changes, []
        return changes

    def close(self) -> None:
        self._feeds.discard(self)
