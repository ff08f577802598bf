"""Item 7 of issue 17: slow and vanishing clients, URLs refused at submit.

Proves: bounded time (a slow-header client is cut off), no 5xx and no traceback
(a client that hangs up mid-body), and 400 at submit for URLs docs/inputs.md says
are refused there (port 0, host names over 253 characters).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from tests.support import Server, assert_error

HEADER_TIMEOUT = 2.0


@pytest.fixture
def slow_server(make_server: Callable[..., Server]) -> Server:
    return make_server(env={"LTXSERVE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}, workers=0)


def _closed_after(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``sock`` (or ``limit``), and what it said."""
    t0 = time.monotonic()
    got = b""
    sock.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return time.monotonic() - t0, got


def test_slow_headers_are_cut_off(slow_server: Server) -> None:
    """Bounded time: headers sent a byte every 0.3 s get 408 and a close after ~2 s."""
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        t0 = time.monotonic()
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.3)
            if time.monotonic() - t0 > HEADER_TIMEOUT + 8:
                break
        took, answer = _closed_after(sock, 0 if closed else 2)
        elapsed = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408") or closed, answer[:100]
    assert elapsed < HEADER_TIMEOUT + 6, elapsed


def test_silent_connection_is_closed(slow_server: Server) -> None:
    """Bounded time: a connection that never sends a byte is closed after the deadline."""
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        took, answer = _closed_after(sock, HEADER_TIMEOUT + 8)
    assert took < HEADER_TIMEOUT + 6, took
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_keep_alive_requests_are_not_cut_by_the_header_deadline(slow_server: Server) -> None:
    """The deadline is per request: a connection that keeps working is not closed."""
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while b'{"status":"ok"}' not in answer:
                chunk = sock.recv(4096)
                assert chunk, answer  # closed before the answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer
            time.sleep(HEADER_TIMEOUT * 0.75)  # under keep-alive's 5 s, over half the deadline


def test_client_leaving_mid_body_is_no_error(slow_server: Server) -> None:
    """No traceback: a POST whose client hangs up halfway is logged as a disconnect."""
    for path in ("/v2/text-to-video", "/v1/upload"):
        with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {slow_server.api_key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                '{"prompt": "half a bo'.encode()
            )
            time.sleep(0.3)
        time.sleep(0.5)
    with slow_server.client() as c:
        assert c.get("/healthz").status_code == 200
    log = slow_server.log()
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com:0/cat.png",
        "https://" + ".".join(["a" * 63] * 4) + ".com/cat.png",  # 260 characters
        "https://" + "a" * 64 + ".example.com/cat.png",  # a label over 63
    ],
    ids=["port-0", "host-260-chars", "label-64-chars"],
)
def test_url_refused_at_submit(server: Server, url: str) -> None:
    """400 at submit, naming the field: docs/inputs.md promises these never reach a worker."""
    body = {
        "image_uri": url,
        "prompt": "a cat",
        "model": "ltx-2-3-fast",
        "duration": 2,
        "resolution": "1280x720",
        "fps": 24,
    }
    with server.client() as c:
        r = c.post("/v2/image-to-video", json=body)
    assert_error(r, 400, "invalid_request_error", "image_uri")
