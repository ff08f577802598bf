"""A loopback HTTP proxy in front of the real server that can be told to misbehave.

The SDK's retry rules are only worth something if they hold against real answers on
a real socket, so tests do not mock httpx. The proxy forwards every request to the
real ltxserve server. Told to, it answers the next N matching requests itself:
with an error envelope and an optional ``Retry-After`` (``fail``), or by closing
the connection with no answer, a network error (``drop``; ``lose`` forwards the
request first, so the server acts on it and only the answer is lost). It can also add a
header to forwarded answers (``add_header``). Every request is logged with its
arrival time, so tests can count attempts and measure the waits between them; the
log entry is made when the answer is ready, and ``arrivals`` lists requests the
moment they arrive, for requests whose answer a client stopped waiting for.

The Host header is forwarded unchanged. The server builds its result and upload
URLs from it, so those URLs point back through the proxy as well.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


@dataclass
class Rule:
    count: int
    status: int = 0  # 0: drop the connection instead of answering
    error_type: str = "api_error"
    retry_after: str | None = None
    method: str | None = None
    path_prefix: str = ""
    forward: bool = False  # with status 0: forward, then lose the answer

    def matches(self, method: str, path: str) -> bool:
        return (
            self.count > 0 and (self.method in (None, method)) and path.startswith(self.path_prefix)
        )


@dataclass
class Seen:
    method: str
    path: str
    status: int  # what the client got; 0 = connection dropped
    at: float
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class FaultProxy:
    """``with FaultProxy(upstream) as proxy: ... proxy.url ...``"""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.rules: list[Rule] = []
        self.extra_headers: list[tuple[str, str, str]] = []  # (path prefix, name, value)
        self.log: list[Seen] = []
        self.arrivals: list[str] = []  # every request's path, as it arrives
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests call ----------------------------------------------------------

    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        error_type: str = "api_error",
        retry_after: str | None = None,
        method: str | None = None,
        path_prefix: str = "",
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and an envelope."""
        with self.lock:
            self.rules.append(Rule(times, status, error_type, retry_after, method, path_prefix))

    def drop(self, times: int = 1, *, method: str | None = None, path_prefix: str = "") -> None:
        """Close the connection without answering the next ``times`` matching requests."""
        with self.lock:
            self.rules.append(Rule(times, 0, method=method, path_prefix=path_prefix))

    def lose(self, times: int = 1, *, method: str | None = None, path_prefix: str = "") -> None:
        """Forward the next ``times`` matching requests, then close the connection
        without passing the answer on: the server did the work, the client never hears."""
        with self.lock:
            self.rules.append(Rule(times, 0, method=method, path_prefix=path_prefix, forward=True))

    def add_header(self, path_prefix: str, name: str, value: str) -> None:
        """Add a header to every forwarded answer under ``path_prefix``."""
        with self.lock:
            self.extra_headers.append((path_prefix, name, value))

    def requests(self, method: str | None = None, path_prefix: str = "") -> list[Seen]:
        with self.lock:
            return [
                s
                for s in self.log
                if (method in (None, s.method)) and s.path.startswith(path_prefix)
            ]

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.extra_headers.clear()
            self.log.clear()
            self.arrivals.clear()

    # -- the handler ----------------------------------------------------------------

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self.lock:
            self.log.append(seen)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _handle(self) -> None:
                now = time.monotonic()
                with proxy.lock:
                    proxy.arrivals.append(self.path)
                body = self._read_body()
                headers = {k: v for k, v in self.headers.items()}
                rule = proxy._take_rule(self.command, self.path)
                if rule is not None and rule.status == 0 and not rule.forward:
                    proxy._record(Seen(self.command, self.path, 0, now, body, headers))
                    self.close_connection = True
                    self.connection.close()
                    return
                if rule is not None and not rule.forward:
                    payload = json.dumps(
                        {
                            "type": "error",
                            "error": {
                                "type": rule.error_type,
                                "message": f"injected {rule.status}",
                            },
                        }
                    ).encode()
                    self.send_response(rule.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if rule.retry_after is not None:
                        self.send_header("Retry-After", rule.retry_after)
                    self.end_headers()
                    proxy._record(Seen(self.command, self.path, rule.status, now, body, headers))
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=60
                )
                try:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    fwd["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=fwd)
                    upstream = conn.getresponse()
                    data = upstream.read()
                    if rule is not None:  # lose: the work is done, the answer never arrives
                        proxy._record(Seen(self.command, self.path, 0, now, body, headers))
                        self.close_connection = True
                        self.connection.close()
                        return
                    self.send_response(upstream.status)
                    for k, v in upstream.getheaders():
                        if k.lower() not in HOP_BY_HOP:
                            self.send_header(k, v)
                    with proxy.lock:
                        extra = [
                            (n, v) for p, n, v in proxy.extra_headers if self.path.startswith(p)
                        ]
                    for name, value in extra:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    # Logged before the answer leaves, so the log is complete by the
                    # time the client has it.
                    proxy._record(
                        Seen(self.command, self.path, upstream.status, now, body, headers)
                    )
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True  # the client stopped waiting
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler
