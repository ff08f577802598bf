"""The browser playground: ``GET /`` (index.html) and ``GET /web/<file>`` (static assets).

Plain files shipped in the package (``ltxserve/web``), no build step. No API key is
needed to fetch them: the page asks for the key and sends it on its own API calls.
``/web/models.json`` is generated from the server's model table so the forms offer
what this server accepts. Nothing here collides with the documented API paths
(``/v1/...``, ``/v2/...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from ltxserve.api.deps import Config, Keys, Models
from ltxserve.errors import NotFoundError

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# Result and upload URLs may point at another origin when public_url is set, so
# connect/media stay open; scripts and styles come only from this server.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src * blob: data:; connect-src *; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _static(name: str) -> Response:
    path = WEB_DIR / name
    suffix = path.suffix.lower()
    if not SAFE_NAME.match(name) or suffix not in CONTENT_TYPES or not path.is_file():
        raise NotFoundError(f"No route for /web/{name}")
    headers = dict(HEADERS)
    if suffix == ".html":
        headers["Content-Security-Policy"] = CSP
        headers["Referrer-Policy"] = "no-referrer"
    return FileResponse(path, media_type=CONTENT_TYPES[suffix], headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def index() -> Response:
    return _static("index.html")


@router.api_route("/web/models.json", methods=["GET", "HEAD"])
async def models(catalog: Models) -> Response:
    """The model table as the forms need it (no key: it is the public capability list)."""
    out: dict[str, Any] = {}
    for spec in catalog.models.values():
        if spec.status == "removed":
            continue
        out[spec.name] = {
            "status": spec.status,
            "tier": spec.tier,
            "endpoints": sorted(spec.endpoints),
            "auto_duration": spec.auto_duration,
            "last_frame": spec.last_frame,
            "camera_motion": spec.camera_motion,
            "audio_rules": [
                {"resolutions": sorted(r.resolutions), "max_audio_seconds": r.max_audio_seconds}
                for r in spec.audio_rules
            ],
            "rules": [
                {
                    "resolutions": sorted(r.resolutions),
                    "fps": sorted(r.fps),
                    "durations": list(r.durations),
                }
                for r in spec.rules
            ],
        }
    return Response(orjson.dumps({"models": out}), media_type="application/json", headers=HEADERS)


@router.api_route("/web/server.json", methods=["GET", "HEAD"])
async def server_info(settings: Config) -> Response:
    """What the page must say about this server: the engine its workers run.

    ``serve`` resolves ``auto`` before it starts; an API-only process knows the engine
    only when ``LTXSERVE_ENGINE`` names it, else ``engine`` is null. No key: like the
    model table, it describes the server, not anyone's data.
    """
    from ltxserve import __version__

    engine = settings.engine
    body = {"engine": None if engine == "auto" else engine, "version": __version__}
    return Response(orjson.dumps(body), media_type="application/json", headers=HEADERS)


@router.get("/web/key")
async def key_check(request: Request, keys: Keys) -> Response:
    """The playground's key check: 200 with the key's id when the server accepts the
    ``Authorization`` header, else the documented 401 envelope. Touches no job."""
    key_id = await keys.key_id(request.headers.get("authorization"))
    return Response(
        orjson.dumps({"key_id": key_id}), media_type="application/json", headers=HEADERS
    )


@router.api_route("/web/{name}", methods=["GET", "HEAD"])
async def static(name: str) -> Response:
    return _static(name)
