"""CORS (LTXSERVE_CORS_ORIGINS): preflights per the Fetch standard for the allowed origins,
and every error envelope readable by a page on such an origin."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

from ltxserve.api.app import create_app
from ltxserve.config import Settings
from tests.support import Server, assert_error, free_port

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def preflight(c: httpx.Client, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return c.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def readable(r: httpx.Response, origin: str = APP) -> None:
    assert r.headers.get("access-control-allow-origin") == origin, r.headers
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after"} <= exposed


def test_cors_for_allowed_origins(make_server: Callable[..., Server]) -> None:
    srv = make_server(
        env={
            "LTXSERVE_CORS_ORIGINS": f"{APP}, http://localhost:3000",
            "LTXSERVE_MAX_BODY_BYTES": "4096",
        },
        workers=0,
    )
    with httpx.Client(base_url=srv.base_url, timeout=30) as c:
        r = preflight(c, "/v2/text-to-video", APP)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP
        assert "POST" in r.headers["access-control-allow-methods"]
        assert {"authorization", "content-type"} <= {
            h.strip() for h in r.headers["access-control-allow-headers"].lower().split(",")
        }
        assert int(r.headers["access-control-max-age"]) > 0
        assert "Origin" in r.headers["vary"] and len(r.headers["x-request-id"]) == 32
        assert (
            preflight(c, "/v2/text-to-video/abc", "http://localhost:3000", "GET").headers[
                "access-control-allow-origin"
            ]
            == "http://localhost:3000"
        )
        # a page may cancel a job (DELETE, docs/api.md "Cancel")
        r = preflight(c, "/v2/text-to-video/abc", APP, "DELETE")
        assert "DELETE" in r.headers["access-control-allow-methods"]
        # Another origin: refused, in the envelope, without the headers a browser needs.
        r = preflight(c, "/v2/text-to-video", OTHER)
        assert_error(r, 400, "invalid_request_error", "Disallowed CORS origin")
        assert "access-control-allow-origin" not in r.headers
        # A cross-origin 400: the page can read the message.
        key = {"Authorization": f"Bearer {srv.api_key}", "Origin": APP}
        r = c.post("/v2/text-to-video", json={"model": "ltx-2-3-pro"}, headers=key)
        assert_error(r, 400, "invalid_request_error", "prompt is required")
        readable(r)
        # ... and so on for the other documented errors, those made by middleware included.
        r = c.get("/v2/text-to-video/x", headers={"Origin": APP})
        assert_error(r, 401, "authentication_error")
        readable(r)
        r = c.get("/nowhere", headers={"Origin": APP})
        assert_error(r, 404, "not_found_error")
        readable(r)
        r = c.delete("/v2/text-to-video", headers={"Origin": APP})
        assert_error(r, 405, "invalid_request_error")
        readable(r)
        json_key = {**key, "Content-Type": "application/json"}
        r = c.post("/v2/text-to-video", content=b"x" * 5000, headers=json_key)
        assert_error(r, 413, "request_too_large")  # from Content-Length, in the middleware
        readable(r)
        r = c.post("/v2/text-to-video", content=iter([b"x" * 3000] * 2), headers=json_key)
        assert_error(r, 413, "request_too_large")  # counted while the body streams
        readable(r)
        # Success answers too; other origins get no allow header.
        r = c.post(
            "/v2/text-to-video",
            headers=key,
            json={
                "prompt": "a cat",
                "model": "ltx-2-3-pro",
                "duration": 2,
                "resolution": "1920x1080",
            },
        )
        assert r.status_code == 202
        readable(r)
        r = c.post("/v2/text-to-video", json={}, headers={**key, "Origin": OTHER})
        assert "access-control-allow-origin" not in r.headers


def test_no_cors_by_default(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        r = preflight(c, "/v2/text-to-video", APP)
        assert_error(r, 405, "invalid_request_error")
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/healthz", headers={"Origin": APP})
        assert "access-control-allow-origin" not in r.headers


def test_the_500_envelope_keeps_cors_headers(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, cors_origins=[APP]))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{port}/boom", headers={"Origin": APP})
        assert_error(r, 500, "api_error")
        readable(r)
    finally:
        server.should_exit = True
        thread.join(10)


def test_any_origin_with_a_star(make_server: Callable[..., Server]) -> None:
    srv = make_server(env={"LTXSERVE_CORS_ORIGINS": "*"}, workers=0)
    with httpx.Client(base_url=srv.base_url, timeout=30) as c:
        r = preflight(c, "/v1/upload", OTHER)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        r = c.post("/v1/upload", headers={"Origin": OTHER})
        assert_error(r, 401, "authentication_error")
        assert r.headers["access-control-allow-origin"] == "*"
