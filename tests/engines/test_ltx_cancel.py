"""Cancel of a running job on the model engine: the tiny random LTX-2 on CPU
(tests/engines/tiny_ltx.py) behind a real server and worker.

The job is given many denoising steps so it is still running when the DELETE comes;
the engine stops at its next step (the runner's progress callback), the runner keeps
its pipeline loaded (same pid, no second "engine: ltx" load in the log) and the
worker takes the next job. Prints the time from the DELETE to the worker taking the
next job (run with ``-rP`` or ``-s``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the ltx engine tests need torch (pip install -e '.[ltx]')")
pytest.importorskip("diffusers", reason="the ltx engine tests need diffusers (the 'ltx' extra)")
pytest.importorskip("transformers", reason="the ltx engine tests need transformers")

from tests.core.test_cancel import cancel_running  # noqa: E402
from tests.engines.test_ltx import write_registry  # noqa: E402
from tests.engines.tiny_ltx import build_tiny_ltx  # noqa: E402
from tests.support import Server  # noqa: E402

# 2000 denoising steps of the tiny model: tens of seconds on a loaded CPU, each step
# a progress report (a point where a Stop is seen)
LONG_LTX = {
    "prompt": "a robot dancing",
    "model": "ltx-2-3-pro",
    "duration": 2,
    "resolution": "1280x720",
    "fps": 25,
    "generate_audio": False,
}


def test_cancel_running_ltx_job_keeps_the_pipeline_loaded(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    weights = build_tiny_ltx(tmp_path / "tiny-ltx")
    registry = write_registry(
        tmp_path / "models.json",
        weights,
        **{"ltx-2-3-pro": {"steps": 2000}, "ltx-2-3-fast": {"steps": 2}},
    )
    srv = make_server(engine="ltx", env={"LTXSERVE_LTX_MODELS_FILE": str(registry)})
    with srv.client() as c:
        freed, body = cancel_running(srv, c, "text-to-video", LONG_LTX)
    assert 0 < body["progress"] < 1, body
    assert freed < 15, freed
    # the weights were loaded once: the runner was neither restarted nor reloaded
    assert srv.log().count("ltx engine ready") == 1
