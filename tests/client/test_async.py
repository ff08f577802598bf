"""``AsyncClient`` against the real server, run with ``asyncio.run`` (no plugin needed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ltxserve.client import AsyncClient, CompletedJob, FailedJob, NotFoundError
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.support import Server


def test_async_generate_with_injected_503_and_429(
    server: Server, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.fail(503, times=1, error_type="service_unavailable", method="POST")
    proxy.fail(429, times=1, error_type="rate_limit_error", retry_after="1", method="GET")
    progress: list[int] = []

    async def main() -> tuple[CompletedJob, Path]:
        async with AsyncClient(api_key=server.api_key, base_url=proxy.url, **FAST) as c:
            gen = await c.text_to_video.generate(
                **SMALL,
                output=tmp_path / "a.mp4",
                on_progress=lambda done, total: progress.append(done),
            )
            return gen.job, gen.path

    start = time.monotonic()
    job, path = asyncio.run(main())
    assert time.monotonic() - start >= 1  # the Retry-After of the 429
    assert job.status == "completed" and path.stat().st_size == progress[-1] > 0
    assert [s.status for s in proxy.requests("POST")] == [503, 202]
    assert proxy.requests("GET")[0].status == 429


def test_async_jobs_run_concurrently_from_one_client(
    server: Server, proxy: FaultProxy, png_file: Path
) -> None:
    async def main() -> list[CompletedJob | FailedJob]:
        async with AsyncClient(api_key=server.api_key, base_url=proxy.url, **FAST) as c:
            jobs = await asyncio.gather(
                c.text_to_video.submit(**SMALL),
                c.image_to_video.submit(**SMALL, image_uri=png_file),
            )
            with pytest.raises(NotFoundError):
                await c.text_to_video.get(jobs[1].id)  # asked under the wrong endpoint
            return list(
                await asyncio.gather(
                    c.text_to_video.wait(jobs[0], timeout=60),
                    c.image_to_video.wait(jobs[1], timeout=60),
                )
            )

    results = asyncio.run(main())
    assert [r.status for r in results] == ["completed", "completed"]
