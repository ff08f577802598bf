"""The job state machine: the only place that says which status may follow which.

    pending --claim--> processing --finish--> completed
       ^                   |    \\--fail----> failed
       |                   |
       +----requeue--------+      (lease expired / runner crashed, attempts left)
    pending --fail--> failed      (e.g. attempts exhausted before a claim)

``processing -> processing`` is a reclaim of a job whose lease expired.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.PROCESSING, JobStatus.PENDING, JobStatus.COMPLETED, JobStatus.FAILED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


class InvalidTransition(Exception):
    """A programming error: some code tried to move a job along an edge that does not exist."""


def check_transition(old: JobStatus | str, new: JobStatus | str) -> None:
    old, new = JobStatus(old), JobStatus(new)
    if new not in ALLOWED[old]:
        raise InvalidTransition(f"job may not go from {old} to {new}")
