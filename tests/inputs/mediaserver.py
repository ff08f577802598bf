"""A loopback media server for the fetch tests: threaded http.server, optionally TLS.

TLS uses a throwaway CA from ``trustme``; the server certificate covers
``localhost``, ``127.0.0.1``, ``::1`` and ``media.test`` (a name tests map onto
127.0.0.1 with a custom resolver). ``ca_file`` is the PEM the ltxserve server is
told to trust (``LTXSERVE_FETCH_CA_FILE``).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Callable[[], Any] | None = None  # generator of bytes, sent chunked
    delay: float = 0.0  # seconds before each chunk


class MediaServer:
    def __init__(self, cert_dir: Path, tls: bool = True) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, str]] = []  # (path, Host header)
        self.tls = tls
        self.ca_file = cert_dir / "ca.pem"
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.hits.append((self.path, self.headers.get("Host", "")))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                try:
                    if route.chunks is not None:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in route.chunks():
                            if route.delay:
                                time.sleep(route.delay)
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        if "Content-Length" not in route.headers:
                            self.send_header("Content-Length", str(len(route.body)))
                        self.end_headers()
                        if route.delay:
                            time.sleep(route.delay)
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            ca = trustme.CA()
            cert = ca.issue_cert("localhost", "127.0.0.1", "::1", "media.test")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(ctx)
            ca.cert_pem.write_to_path(str(self.ca_file))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> MediaServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, host: str = "localhost") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def add(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> str:
        self.routes[path] = Route(
            body=body, headers={"Content-Type": content_type, **(headers or {})}, **kw
        )
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, headers={"Location": location})
        return self.url(path)
