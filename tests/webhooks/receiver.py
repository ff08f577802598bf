"""A webhook receiver on loopback for the tests, with its own signature check.

The check is written here from the Standard Webhooks specification (HMAC-SHA256 over
``id.timestamp.body`` with the base64-decoded ``whsec_`` secret, ``v1,<base64>``),
not taken from the server or from the ``standardwebhooks`` package it uses, so a
wrong signature in the product cannot be matched by the same mistake here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    offered = [s.split(",", 1) for s in headers["webhook-signature"].split(" ")]
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in offered)


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int


@dataclass
class Receiver:
    """Answers ``fail_first`` 500s to each message id on /flaky, then 200; 200 elsewhere."""

    fail_first: int = 2
    port: int = field(default_factory=free_port)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    seen = sum(
                        1
                        for h in receiver.hits
                        if h.headers.get("webhook-id") == headers.get("webhook-id")
                    )
                    code = 500 if self.path == "/flaky" and seen < receiver.fail_first else 200
                    receiver.hits.append(Hit(self.path, headers, body, time.monotonic(), code))
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def for_job(self, job_id: str) -> list[Hit]:
        import json

        with self.lock:
            return [h for h in self.hits if json.loads(h.body)["data"]["id"] == job_id]
