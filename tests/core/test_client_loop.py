"""The documented client loop (API-NOTES.md, last section), unchanged but for base URL and key."""

from __future__ import annotations

import time
from pathlib import Path

import av
import requests

from tests.support import Server


def documented_loop(base_url: str, api_key: str, out: Path) -> None:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    response = requests.post(
        f"{base_url}/v2/text-to-video",
        headers=headers,
        json={
            "prompt": "A serene mountain lake at sunrise",
            "model": "ltx-2-3-pro",
            "duration": 8,
            "resolution": "1920x1080",
        },
    )
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        status = requests.get(f"{base_url}/v2/text-to-video/{job_id}", headers=headers)
        status.raise_for_status()
        job = status.json()
        if job["status"] == "completed":
            break
        if job["status"] == "failed":
            raise RuntimeError(job["error"]["message"])
        time.sleep(5)
    video = requests.get(job["result"]["video_url"])
    video.raise_for_status()
    out.write_bytes(video.content)


def test_documented_client_loop_produces_a_playable_mp4(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "video.mp4"
    documented_loop(server.base_url, server.api_key, out)
    with av.open(str(out)) as cont:
        v = cont.streams.video[0]
        assert v.codec_context.name == "h264"
        assert (v.codec_context.width, v.codec_context.height) == (1920, 1080)
        assert v.average_rate == 24
        frames = sum(1 for _ in cont.decode(video=0))
    assert frames == 8 * 24
    with av.open(str(out)) as cont:
        assert cont.streams.audio[0].codec_context.name == "aac"
        assert sum(f.samples for f in cont.decode(audio=0)) >= 8 * 48000 * 0.99
