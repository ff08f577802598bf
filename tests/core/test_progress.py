"""A running job's progress reaches pollers at least every second, with heartbeats at
their default 5 s (progress writes are their own, cheap and rate-limited)."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.core.test_submit import T2V
from tests.support import Server

LONGISH = {**T2V, "resolution": "1920x1080", "duration": 16, "fps": 24}


def test_progress_moves_every_second_between_heartbeats(make_server: Callable[..., Server]) -> None:
    srv = make_server(engine="preview", env={"LTXSERVE_HEARTBEAT_SECONDS": "5"})
    seen: list[tuple[float, float]] = []  # (time, progress) at each change while processing
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=LONGISH).json()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            body = c.get(f"/v2/text-to-video/{job['id']}").json()
            if body["status"] in ("completed", "failed"):
                break
            progress = body.get("progress")
            if (
                body["status"] == "processing"
                and progress is not None
                and (not seen or seen[-1][1] != progress)
            ):
                seen.append((time.monotonic(), progress))
            time.sleep(0.05)
        finished = time.monotonic()
    assert body["status"] == "completed", body
    assert len(seen) >= 3, seen  # a 5 s heartbeat alone shows one value, or none
    times = [t for t, _ in seen] + [finished]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 2.0, gaps  # 0.5 s by design; slack for a loaded machine
