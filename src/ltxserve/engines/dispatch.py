"""One job through an engine: typed request, probed inputs, plan, the endpoint's handler.

What every engine used to repeat in its ``run()`` is done here once, for all of
them: the stored JSON becomes the endpoint's typed request, the inputs are probed
(errors name the field), the output is planned (engines.plan), and the engine's
handler for the endpoint gets an ``EngineJob`` holding all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ltxserve.engines.base import Engine, EngineJob, EngineResult, ProgressCallback
from ltxserve.engines.plan import plan_output
from ltxserve.errors import InvalidRequestError
from ltxserve.jobs.contract.requests import parse_request
from ltxserve.media.probe import probe


def run_job(
    engine: Engine,
    job_id: str,
    endpoint: str,
    request: Mapping[str, Any],
    inputs: Mapping[str, Path],
    output_dir: Path,
    progress: ProgressCallback,
) -> EngineResult:
    """Run one job: ``request`` is the JSON the job stored (``validate``'s result)."""
    typed = parse_request(endpoint, request)
    handler = engine.handlers().get(endpoint)
    if handler is None:
        raise InvalidRequestError(f"the {engine.name} engine does not serve {endpoint}")
    infos = {field: probe(path, label=field) for field, path in inputs.items()}
    plan = plan_output(typed, infos)
    output_dir.mkdir(parents=True, exist_ok=True)
    job = EngineJob(job_id, typed, dict(inputs), infos, plan, output_dir)
    return handler(job, progress)
