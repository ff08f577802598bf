"""One directory of metric files for every ltxserve process on a machine.

uvicorn workers, ``serve``'s worker subprocesses and further API processes are
separate processes; each keeps its own counters. prometheus_client's multiprocess
mode has each process write its values to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape sum them, so any API process of the
machine answers for all of them.

The directory is ``$PROMETHEUS_MULTIPROC_DIR`` when the operator set it, else
``<data dir>/metrics``. It must be chosen before prometheus_client creates a
metric (its value class is picked at import), which is why ``serve`` and
``worker`` call ``use_dir`` first thing and this module imports the client lazily.
``serve`` cleans it at start: the files of processes that are gone are removed
(their counts reset, as a restart resets any counter); files of live processes,
say a separate ``ltxserve worker`` of the same data dir, are kept.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger("ltxserve.metrics")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clean_dead(directory: Path) -> int:
    """Remove the metric files of processes that no longer run; return how many."""
    removed = 0
    for path in directory.glob("*.db"):
        pid_text = path.stem.rsplit("_", 1)[-1]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def use_dir(data_dir: Path, *, clean: bool = False) -> Path:
    """Put this process (and the children it starts) in multiprocess mode.

    Call before the first metric is created. ``clean``: remove the files of dead
    processes (``serve`` at start).
    """
    directory = Path(os.environ.get(ENV) or data_dir / "metrics")
    directory.mkdir(parents=True, exist_ok=True)
    if clean:
        removed = clean_dead(directory)
        if removed:
            log.info("metrics: removed %d files of processes that are gone", removed)
    os.environ[ENV] = str(directory)
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported already: metrics made from now on use the files
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    return directory


def mark_dead(pid: int) -> None:
    """Bookkeeping for a worker that died (its live gauges go; counters stay)."""
    directory = os.environ.get(ENV)
    if not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class _ThisProcess:
    """The default registry as one collector, for a registry of our own."""

    def collect(self) -> Iterable[Metric]:
        from prometheus_client import REGISTRY

        return REGISTRY.collect()


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """What a scrape reports: every process's files in multiprocess mode (else this
    process's own metrics), plus ``extra`` collectors (the job counts)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(ENV):
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return registry
