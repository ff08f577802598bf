"""An unexpected exception answers 500 api_error, logs the traceback with the request id,
and never shows the client a traceback: real uvicorn on loopback, app with a failing route."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from ltxserve.api.app import create_app
from ltxserve.config import Settings
from tests.support import assert_error, free_port


def test_unexpected_exception_is_a_clean_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        with caplog.at_level(logging.ERROR, logger="ltxserve.api"):
            r = httpx.get(f"http://127.0.0.1:{port}/boom")
        assert_error(r, 500, "api_error", "unexpected")
        assert "secret internal detail" not in r.text and "Traceback" not in r.text
        rid = r.headers["x-request-id"]
        record = next(rec for rec in caplog.records if rid in rec.getMessage())
        assert record.exc_info and "secret internal detail" in str(record.exc_info[1])
    finally:
        server.should_exit = True
        thread.join(10)
