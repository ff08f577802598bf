"""The seven endpoint commands of ``ltx``, one per /v2 operation (five also take ``--sync``).

Each command maps its options one to one onto the request body's fields (``--image-uri``
is ``image_uri``) and hands them to ``run_job``. Options left out are not sent,
so the server's documented defaults apply. Options the API requires are required
here too: the CLI never picks a model or a resolution for you.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ltxserve.cli_flags import Command
from ltxserve.client._cli_app import (
    AUTO,
    ApiKey,
    BaseUrl,
    Conn,
    Json,
    NoWait,
    Output,
    Poll,
    Retries,
    Sync,
    Timeout,
    Wait,
    app,
    opt,
    run_job,
)
from ltxserve.client.types import (
    AudioToVideoRequest,
    CameraMotion,
    ExtendMode,
    ExtendRequest,
    ImageToVideoRequest,
    RetakeMode,
    RetakeRequest,
    TextToVideoRequest,
    VideoToVideoHdrRequest,
    VideoToVideoReframeRequest,
)

URI = "URL, data: URI, storage_uri, or a local file (uploaded first)"

Prompt = Annotated[str, opt("prompt", "What the video shows (<= 5000 characters)")]
OptPrompt = Annotated[str | None, opt("prompt", "What the video (or new part) shows")]
Model = Annotated[
    str, opt("model", "Model: ltx-2-3-fast, ltx-2-3-pro, ltx-2-5-fast or ltx-2-5-pro")
]
ProModel = Annotated[str | None, opt("model", "Model [server default: ltx-2-3-pro]")]
A2vModel = Annotated[
    str | None,
    opt("model", "ltx-2-3-pro, ltx-2-5-fast or ltx-2-5-pro [server default: ltx-2-3-pro]"),
]
Duration = Annotated[str, opt("duration", "Seconds, or 'auto' (LTX-2.5 models)")]
Resolution = Annotated[str, opt("resolution", "WIDTHxHEIGHT, e.g. 1920x1080")]
OptResolution = Annotated[
    str | None,
    opt(
        "resolution",
        "1920x1080 or 1080x1920 [server default: 1080x1920 for a portrait input, else 1920x1080]",
    ),
]
A2vResolution = Annotated[
    str | None,
    opt(
        "resolution",
        "1920x1080 or 1080x1920; also 1280x720, 2560x1440, 3840x2160 and their "
        "portrait twins, as the model offers [server default: 1080x1920 for a portrait image, "
        "else 1920x1080]",
    ),
]
Fps = Annotated[int | None, opt("fps", "Frames per second [server default: 24]")]
Audio = Annotated[
    bool | None,
    opt(
        "generate-audio/--no-generate-audio",
        "Generate a soundtrack [server default: on]",
        env="LTX_GENERATE_AUDIO",
    ),
]
Camera = Annotated[CameraMotion | None, opt("camera-motion", "Camera motion effect")]
VideoUri = Annotated[str, opt("video-uri", f"Input video: {URI}")]


def _duration(value: str) -> object:
    """``--duration`` as the API wants it: an int, or null for 'auto'."""
    if value.strip().lower() == "auto":
        return AUTO
    try:
        return int(value)
    except ValueError:
        hint = "--duration"
        raise typer.BadParameter("expected whole seconds or 'auto'", param_hint=hint) from None


@app.command("text-to-video", rich_help_panel="Generate", cls=Command)
def text_to_video(
    prompt: Prompt,
    model: Model,
    duration: Duration,
    resolution: Resolution,
    fps: Fps = None,
    generate_audio: Audio = None,
    camera_motion: Camera = None,
    output: Output = None,
    no_wait: NoWait = False,
    sync: Sync = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Generate a video from a text prompt."""
    run_job(
        TextToVideoRequest,
        dict(
            prompt=prompt,
            model=model,
            duration=_duration(duration),
            resolution=resolution,
            fps=fps,
            generate_audio=generate_audio,
            camera_motion=camera_motion,
        ),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout, sync),
    )


@app.command("image-to-video", rich_help_panel="Generate", cls=Command)
def image_to_video(
    image_uri: Annotated[str, opt("image-uri", f"First frame: {URI}")],
    prompt: Prompt,
    model: Model,
    duration: Duration,
    resolution: Resolution,
    last_frame_uri: Annotated[str | None, opt("last-frame-uri", f"Last frame: {URI}")] = None,
    fps: Fps = None,
    generate_audio: Audio = None,
    camera_motion: Camera = None,
    output: Output = None,
    no_wait: NoWait = False,
    sync: Sync = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Animate an image (optionally towards a last frame)."""
    run_job(
        ImageToVideoRequest,
        dict(
            image_uri=image_uri,
            prompt=prompt,
            model=model,
            duration=_duration(duration),
            resolution=resolution,
            last_frame_uri=last_frame_uri,
            fps=fps,
            generate_audio=generate_audio,
            camera_motion=camera_motion,
        ),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout, sync),
    )


@app.command("audio-to-video", rich_help_panel="Generate", cls=Command)
def audio_to_video(
    audio_uri: Annotated[str, opt("audio-uri", f"Soundtrack, 2-20 s (2-10 s at 1440p/4K): {URI}")],
    image_uri: Annotated[str | None, opt("image-uri", f"First frame: {URI}")] = None,
    prompt: OptPrompt = None,
    resolution: A2vResolution = None,
    guidance_scale: Annotated[
        float | None, opt("guidance-scale", "CFG, 1-50 [server default: 5, or 9 with an image]")
    ] = None,
    model: A2vModel = None,
    output: Output = None,
    no_wait: NoWait = False,
    sync: Sync = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Generate a video driven by an audio track (needs --prompt or --image-uri)."""
    run_job(
        AudioToVideoRequest,
        dict(
            audio_uri=audio_uri,
            image_uri=image_uri,
            prompt=prompt,
            resolution=resolution,
            guidance_scale=guidance_scale,
            model=model,
        ),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout, sync),
    )


@app.command("retake", rich_help_panel="Edit", cls=Command)
def retake(
    video_uri: VideoUri,
    start_time: Annotated[float, opt("start-time", "Start of the section, seconds")],
    duration: Annotated[float, opt("duration", "Length of the section, seconds (>= 2)")],
    prompt: OptPrompt = None,
    mode: Annotated[
        RetakeMode | None, opt("mode", "What to replace [server default: replace_audio_and_video]")
    ] = None,
    resolution: OptResolution = None,
    model: ProModel = None,
    output: Output = None,
    no_wait: NoWait = False,
    sync: Sync = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Regenerate a section of a video (its audio, its picture, or both)."""
    run_job(
        RetakeRequest,
        dict(
            video_uri=video_uri,
            start_time=start_time,
            duration=duration,
            prompt=prompt,
            mode=mode,
            resolution=resolution,
            model=model,
        ),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout, sync),
    )


@app.command("extend", rich_help_panel="Edit", cls=Command)
def extend(
    video_uri: VideoUri,
    duration: Annotated[float, opt("duration", "Seconds to add, 2-20")],
    prompt: OptPrompt = None,
    mode: Annotated[
        ExtendMode | None, opt("mode", "Add at the start or the end [server default: end]")
    ] = None,
    model: ProModel = None,
    context: Annotated[
        float | None,
        opt("context", "Seconds of input used as context, 1-20 [server default: as many as fit]"),
    ] = None,
    output: Output = None,
    no_wait: NoWait = False,
    sync: Sync = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Extend a video at its start or end."""
    run_job(
        ExtendRequest,
        dict(
            video_uri=video_uri,
            duration=duration,
            prompt=prompt,
            mode=mode,
            model=model,
            context=context,
        ),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout, sync),
    )


@app.command("video-to-video-hdr", rich_help_panel="Edit", cls=Command)
def video_to_video_hdr(
    video_uri: VideoUri,
    output: Output = None,
    no_wait: NoWait = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Convert an SDR video to HDR; the result is a ZIP of EXR frames (<id>.zip)."""
    run_job(
        VideoToVideoHdrRequest,
        dict(video_uri=video_uri),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout),
    )


@app.command("video-to-video-reframe", rich_help_panel="Edit", cls=Command)
def video_to_video_reframe(
    video_uri: VideoUri,
    resolution: Annotated[str, opt("resolution", "Target frame, e.g. 1080x1920 or 1080x1080")],
    model: Annotated[str, opt("model", "Model (the API offers only ltx-2-3-pro)")] = "ltx-2-3-pro",
    output: Output = None,
    no_wait: NoWait = False,
    poll_interval: Poll = 5.0,
    timeout: Timeout = 1800.0,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    max_retries: Retries = 3,
    json_out: Json = False,
) -> None:
    """Outpaint a video to a new frame size / aspect ratio."""
    run_job(
        VideoToVideoReframeRequest,
        dict(
            video_uri=video_uri,
            model=model,
            resolution=resolution,
        ),
        Conn(base_url, api_key, max_retries, json_out),
        Wait(output, no_wait, poll_interval, timeout),
    )
