"""EventHub: one listener per API process, fanning job changes out to its SSE streams.

A stream (api/events.py) subscribes with its job id and the version it has sent.
The hub's one thread waits on the store's change feed (jobs/lifecycle/changes.py):
for each watched job whose version moved it reads the job's status view once and
hands it to every stream of that job on the event loop, where a stream keeps only
the newest (a slow client skips intermediate progress, never the terminal state).
So hundreds of streams cost one thread, one ``LISTEN`` connection on PostgreSQL and
one batched version read per tick on SQLite; no stream holds a connection or a
thread, and a stream with nothing to say costs an idle coroutine.

Started by the first subscription (an API process nobody streams from listens to
nothing). ``close()`` (server shutdown) ends every stream: its client reconnects
with ``Last-Event-ID`` to another API process, or polls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from ltxserve.jobs.lifecycle.manager import JobManager
from ltxserve.jobs.store.base import JobView
from ltxserve.metrics.instruments import EVENT_STREAMS

log = logging.getLogger("ltxserve.api")
RECHECK_SECONDS = 5.0
"""With a listening feed (PostgreSQL), every watched job's version is read this often
anyway: the net under a notification lost while the listener reconnected."""


class Subscription:
    """One stream's mailbox: the newest view past ``version``, or the job gone."""

    def __init__(self, job_id: str, version: int) -> None:
        self.job_id = job_id
        self.version = version  # the newest the stream has sent
        self.latest: JobView | None = None
        self.gone = False  # deleted (retention) or the hub closed
        self.event = asyncio.Event()

    def offer(self, view: JobView | None) -> None:
        """On the loop: keep ``view`` if newer than anything sent or waiting."""
        if view is None:
            self.gone = True
        elif view.version > max(self.version, self.latest.version if self.latest else -1):
            self.latest = view
        else:
            return
        self.event.set()

    def take(self) -> JobView | None:
        view, self.latest = self.latest, None
        self.event.clear()
        if view is not None:
            self.version = view.version
        return view


class EventHub:
    def __init__(self, manager: JobManager, poll_seconds: float) -> None:
        self.manager = manager
        self.poll_seconds = poll_seconds
        self.closed = False
        self._subs: dict[str, set[Subscription]] = {}
        self._fresh: set[str] = set()  # subscribed since the last check: read their version
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def streams(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def subscribe(self, job_id: str, version: int) -> Subscription:
        """On the loop. The hub reads the job's version at its next tick, so a change
        made between the stream's own read and this call is not missed."""
        self._loop = asyncio.get_running_loop()
        sub = Subscription(job_id, version)
        with self._lock:
            self._subs.setdefault(job_id, set()).add(sub)
            self._fresh.add(job_id)
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(
                    target=self._run, name="ltxserve-events", daemon=True
                )
                self._thread.start()
        if self.closed:  # shutting down: the stream sends what it has and ends
            sub.offer(None)
        EVENT_STREAMS.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id)
            if subs is not None and sub in subs:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.job_id]
                EVENT_STREAMS.dec()

    def close(self) -> None:
        """End every stream now (their coroutines return at once) and stop listening."""
        self.closed = True
        self._stop.set()
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            self._call(sub.offer, None)

    def _call(self, fn: object, *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.call_soon(fn, *args)  # type: ignore[arg-type]
        else:
            loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]

    def _deliver(self, job_id: str, view: JobView | None) -> None:
        with self._lock:
            subs = list(self._subs.get(job_id, ()))
        for sub in subs:
            sub.offer(view)

    def _watched(self) -> tuple[dict[str, int], set[str]]:
        with self._lock:
            watched = {job_id: min(s.version for s in subs) for job_id, subs in self._subs.items()}
            fresh, self._fresh = self._fresh, set()
        return watched, fresh

    def _run(self) -> None:
        feed = self.manager.change_feed()
        last_full = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    changes = feed.wait(self.poll_seconds)
                    if self._stop.is_set():
                        break
                    self._check(changes, last_full)
                    if changes is None or time.monotonic() - last_full >= RECHECK_SECONDS:
                        last_full = time.monotonic()
                except Exception:  # noqa: BLE001 - the store is away: streams wait, we retry
                    log.warning("job events: check failed; retrying", exc_info=True)
                    self._stop.wait(1.0)
        finally:
            feed.close()

    def _check(self, changes: list[tuple[str, int]] | None, last_full: float) -> None:
        watched, fresh = self._watched()
        if not watched:
            return
        stale: set[str] = set()
        if changes is None or time.monotonic() - last_full >= RECHECK_SECONDS:
            fresh = set(watched)
        else:
            stale = {i for i, v in changes if i in watched and v > watched[i]}
        fresh &= set(watched)
        if fresh:
            current = self.manager.versions(sorted(fresh))
            stale |= {i for i in fresh if current.get(i, -1) != watched[i]}
        for job_id in stale:
            self._call(self._deliver, job_id, self.manager.peek(job_id))
