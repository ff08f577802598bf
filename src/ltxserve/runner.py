"""The runner: a long-lived child process that loads one engine and runs jobs.

Modelled on cog's python server: the worker talks to the runner over a pipe and
gets typed events back. Because generation lives in its own process, a crash
there (segfault, OOM kill) shows up as a closed pipe, which the worker tells
apart from a job's own failure (a Failed event) and retries.

    worker -> runner:  RunJob | Stop
    runner -> worker:  Ready | LoadFailed | Progress | Done | Failed | Stopped

Stop asks the runner to drop the job at hand (the worker lost it: its lease ran
out, or the API failed it). The runner checks for it whenever the engine reports
progress (every frame for preview, every denoising step for ltx), unwinds the job
and answers Stopped, and stays up with its engine loaded: an ltx runner keeps
its weights in memory instead of being killed and reloading them. A Stop that
arrives after the job ended is dropped.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import traceback
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ltxserve.config import ConfigError, Settings
from ltxserve.engines.base import JsonValue, Metadata
from ltxserve.errors import LtxError
from ltxserve.simulate import SimulatedFailure
from ltxserve.simulate import run as simulated


@dataclass(frozen=True)
class RunJob:
    job_id: str
    endpoint: str
    request: dict[str, Any]
    inputs: dict[str, str]
    output_dir: str  # the runner makes it when it writes (engines.dispatch.run_job)


@dataclass(frozen=True)
class Stop:
    job_id: str


@dataclass(frozen=True)
class Ready:
    engine: str


@dataclass(frozen=True)
class LoadFailed:
    message: str
    config: bool = False  # a ConfigError: the worker stops instead of being restarted


@dataclass(frozen=True)
class Progress:
    job_id: str
    fraction: float


@dataclass(frozen=True)
class Done:
    job_id: str
    outputs: dict[str, tuple[str, str]]  # label -> (path, content type)
    metadata: dict[str, JsonValue] = field(default_factory=dict)  # EngineResult.metadata


@dataclass(frozen=True)
class Failed:
    job_id: str
    type: str
    message: str


@dataclass(frozen=True)
class Stopped:
    job_id: str


def plain_metadata(metadata: Metadata) -> dict[str, JsonValue]:
    """The engine's metadata as plain JSON values, ready for the pipe and the store's
    JSON column: a numpy number (``np.int64`` seed) becomes its Python value, anything
    else JSON cannot hold becomes its ``str``. Metadata never fails a finished job."""

    def plain(value: Any) -> Any:
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
        return str(value)

    result: dict[str, JsonValue] = json.loads(json.dumps(dict(metadata), default=plain))
    return result


class JobStopped(Exception):  # noqa: N818 - an outcome, not an error
    """Raised from the progress callback to unwind a job the worker asked to stop."""


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the worker dies, so no orphan keeps generating."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def runner_main(conn: Connection, engine_name: str, settings: Settings) -> None:
    """Entry point of the child process; the engine is built with the worker's settings."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    from ltxserve import logs

    logs.configure(  # the worker's level and format (LTXSERVE_LOG_FORMAT) via the environment
        os.environ.get("LTXSERVE_LOG_LEVEL", "info"),
        text_format="%(asctime)s runner %(levelname)s %(message)s%(context)s",
    )
    from ltxserve.engines import get_engine
    from ltxserve.engines.dispatch import run_job

    try:
        engine = get_engine(engine_name, settings)
        engine.load()
    except ConfigError as exc:
        conn.send(LoadFailed(exc.line(), config=True))
        return
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which exits
        conn.send(LoadFailed(f"{type(exc).__name__}: {exc}"))
        return
    conn.send(Ready(engine.name))
    parent = os.getppid()
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if isinstance(msg, Stop):  # for a job that has already ended
            continue
        if not isinstance(msg, RunJob):
            return
        logs.job_id_var.set(msg.job_id)  # the engine's log records name the job
        last = [-1.0]

        def progress(fraction: float, job_id: str = msg.job_id, last: list[float] = last) -> None:
            if os.getppid() != parent:
                os._exit(1)
            while conn.poll():
                told = conn.recv()
                if isinstance(told, Stop) and told.job_id == job_id:
                    raise JobStopped(job_id)
            if fraction - last[0] >= 0.01 or fraction >= 1.0:
                last[0] = fraction
                conn.send(Progress(job_id, float(min(max(fraction, 0.0), 1.0))))

        # Keys starting with "_" are the server's notes on a request (client-testing
        # directives, derived limits), not the request: the typed request that
        # engines read has no field for them, so a simulated job renders exactly
        # what the same request renders without.
        run = partial(
            run_job,
            engine,
            msg.job_id,
            msg.endpoint,
            msg.request,
            {k: Path(v) for k, v in msg.inputs.items()},
            Path(msg.output_dir),
        )

        try:
            part = msg.request.get("_simulate")
            if part:  # client-testing mode: linger and/or fail (ltxserve.simulate)
                result = simulated(part, progress, run)
            else:
                result = run(progress)
            conn.send(
                Done(
                    msg.job_id,
                    {label: (str(o.path), o.content_type) for label, o in result.outputs.items()},
                    plain_metadata(result.metadata),
                )
            )
        except JobStopped:
            logging.info("job %s stopped at the worker's request", msg.job_id)
            conn.send(Stopped(msg.job_id))
        except (LtxError, SimulatedFailure) as exc:
            conn.send(Failed(msg.job_id, exc.type, exc.message))
        except (OverflowError, FloatingPointError) as exc:
            # absurd numbers in the request (1e308 seconds) overflowing the engine's
            # arithmetic: the request's fault, not the server's (issue 17)
            logging.info("job %s: numbers out of range: %r", msg.job_id, exc)
            conn.send(
                Failed(
                    msg.job_id,
                    "invalid_request_error",
                    f"a number in the request is out of the range this engine can "
                    f"compute with ({type(exc).__name__}: {exc})",
                )
            )
        except Exception:  # noqa: BLE001 - a job's own failure, told to the worker
            logging.error("job %s failed:\n%s", msg.job_id, traceback.format_exc())
            conn.send(Failed(msg.job_id, "api_error", "generation failed unexpectedly"))
