"""GET /openapi.json and /docs: the API describes itself.

/docs is Swagger UI (Apache-2.0, from the ``swagger-ui-py`` package, which ships
its built files) served from this server: no CDN at run time, so the page works
offline and behind a firewall. The page's own start-up script is a file too
(``/docs/init.js``), so the Content-Security-Policy allows scripts from this
server only. Links are relative, so the page also works behind a path prefix.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from ltxserve.api.deps import Config, Models, base_url
from ltxserve.api.openapi import build
from ltxserve.errors import NotFoundError

router = APIRouter(include_in_schema=False)


def _swagger_dir() -> Path:
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
INIT_JS = b"""window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    validatorUrl: null, tryItOutEnabled: false, showExtensions: true,
    persistAuthorization: false,
  });
});
"""
PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ltxserve API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""
# Swagger UI sets inline styles and draws icons from data: URIs; scripts and
# documents come only from this server.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@router.get("/openapi.json")
async def openapi(request: Request, settings: Config, catalog: Models) -> Response:
    doc = build(catalog, base_url(request, settings))
    return Response(orjson.dumps(doc), media_type="application/json", headers=HEADERS)


@router.get("/docs")
async def docs() -> Response:
    return Response(
        PAGE,
        media_type="text/html; charset=utf-8",
        headers={**HEADERS, "Content-Security-Policy": CSP},
    )


@router.get("/docs/{asset}")
async def asset(asset: str) -> Response:
    if asset == "init.js":
        return Response(INIT_JS, media_type="text/javascript; charset=utf-8", headers=HEADERS)
    if asset not in ASSETS:
        raise NotFoundError(f"No route for /docs/{asset}")
    return FileResponse(_swagger_dir() / asset, media_type=ASSETS[asset], headers=HEADERS)
