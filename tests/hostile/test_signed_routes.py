"""Item 5 of issue 17: hostile query strings on the signed routes. Proves: no 5xx, no traceback.

``GET /files/...`` and ``PUT /uploads/...`` take no API key: their query string is
the only authority, so anyone can send anything there. Before the fix a superscript
digit (``expires=%C2%B2`` passes ``str.isdigit()``, then ``int()`` refuses it) or a
5,000-digit expiry answered 500 with a logged traceback. The explicit cases pin the
reported ones; the Hypothesis test fuzzes both routes' query strings and headers
(Range, Content-Length) in CI.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any, Literal, overload
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltxserve.storage.signing import sign
from tests.support import Server

FILE_PATH = "/files/jobs/00000000-0000-0000-0000-000000000000/video.mp4"
UPLOAD_HEADERS = {"x-ltxserve-content-length-range": "1,104857600"}


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("signed"), workers=0).start()
    yield srv
    srv.stop()


def _key(srv: Server) -> bytes:
    return (srv.data_dir / "secret.key").read_text().strip().encode()


def _upload_path(srv: Server) -> str:
    with srv.client() as c:
        url = httpx.URL(c.post("/v1/upload").json()["upload_url"])
    return url.path


def _send(
    srv: Server,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str] | None = None,
    content: bytes = b"",
) -> httpx.Response:
    url = httpx.URL(srv.base_url + path, query=query.encode("ascii"))
    return httpx.request(method, url, headers=headers, content=content or None, timeout=30)


def _assert_clean(srv: Server) -> None:
    log = srv.log()
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]


REPORTED = [
    "expires=%C2%B2&signature=" + "0" * 64,  # superscript two: isdigit() but not int()
    "expires=" + "9" * 5000 + "&signature=" + "0" * 64,  # past int()'s digit limit
    "expires=1e9&signature=x",
    "expires=%EF%BC%91%EF%BC%92&signature=%C3%A9" * 2,  # full-width digits, non-ASCII sig
    "expires=-1&signature=" + "0" * 64,
    "expires=%20123&signature=" + "0" * 64,
    "expires=&signature=",
]


@pytest.mark.parametrize("query", REPORTED, ids=lambda q: q[:24])
def test_reported_queries_are_refused_not_500(signed_server: Server, query: str) -> None:
    """No 5xx: each reported query string gets 403, on both signed routes."""
    r = _send(signed_server, "GET", FILE_PATH, query)
    assert r.status_code == 403, (r.status_code, r.text)
    r = _send(signed_server, "PUT", _upload_path(signed_server), query, UPLOAD_HEADERS, b"x")
    assert r.status_code == 403, (r.status_code, r.text)
    _assert_clean(signed_server)


def test_valid_signature_over_a_hostile_expiry_is_still_refused(signed_server: Server) -> None:
    """A correctly signed 4,000-digit expiry is not an expiry we accept (403, not 404)."""
    huge = "9" * 4000
    sig = sign(_key(signed_server), FILE_PATH, int(huge))
    r = _send(signed_server, "GET", FILE_PATH, f"expires={huge}&signature={sig}")
    assert r.status_code == 403
    _assert_clean(signed_server)


def test_signed_path_traversal_serves_nothing(signed_server: Server) -> None:
    """No 5xx, no leak: even a correctly signed URL cannot climb out of the blob store."""
    for target in (
        "/files/../secret.key",
        "/files/jobs/%2e%2e/%2e%2e/secret.key",
        "/files/jobs/..%2f..%2fsecret.key",
        "/files//etc/passwd",
    ):
        expires = int(time.time()) + 600
        sig = sign(_key(signed_server), target, expires)
        status = _raw_status(
            signed_server,
            (
                f"GET {target}?expires={expires}&signature={sig} HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
            ).encode(),
            body=True,
        )
        assert status[0] in (403, 404), (target, status)
        assert _key(signed_server) not in status[1], target
    _assert_clean(signed_server)


@overload
def _raw_status(srv: Server, request: bytes) -> int: ...
@overload
def _raw_status(srv: Server, request: bytes, body: Literal[True]) -> tuple[int, bytes]: ...


def _raw_status(srv: Server, request: bytes, body: bool = False) -> Any:
    """Send raw bytes (headers httpx would refuse to encode) and read the status code
    (and, with ``body``, everything until the server closes)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(request)
        head = b""
        while (b"\r\n" not in head) or body:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    status = int(head.split(b" ", 2)[1])
    return (status, head) if body else status


def test_hostile_content_length_on_upload(signed_server: Server) -> None:
    """No 5xx: a Content-Length that is not ASCII digits is a 4xx (from us or from h11)."""
    path = _upload_path(signed_server)
    expires = int(time.time()) + 600
    target = f"{path}?expires={expires}&signature={sign(_key(signed_server), path, expires)}"
    for value in ("\u00b2", "9" * 5000, "1e3", "-5", "\uff11"):
        request = (
            f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"x-ltxserve-content-length-range: 1,104857600\r\n"
            f"Content-Length: {value}\r\nConnection: close\r\n\r\nx"
        ).encode()
        status = _raw_status(signed_server, request)
        assert 400 <= status < 500, (value[:20], status)
    _assert_clean(signed_server)


_text = st.text(st.characters(codec="utf-8"), max_size=40)
_numberish = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.from_regex(r"[0-9\u00b2\u00b3\u0660-\u0669\uff10-\uff19]{1,30}", fullmatch=True),
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),
    _text,
)


def _encode(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(
    expires=_numberish,
    signature=st.one_of(_text, st.from_regex(r"[0-9a-fA-F]{60,70}", fullmatch=True)),
    extra=st.lists(st.tuples(_text, _text), max_size=3),
    range_=st.one_of(
        st.none(), st.from_regex(r"bytes=[0-9\-, \u00b2]{0,40}", fullmatch=True), _text
    ),
    sign_it=st.booleans(),
    put=st.booleans(),
)
def test_fuzz_signed_route_queries(
    signed_server: Server,
    expires: str,
    signature: str,
    extra: list[tuple[str, str]],
    range_: str | None,
    sign_it: bool,
    put: bool,
) -> None:
    """No 5xx for any query string (and Range header) on either signed route."""
    path = _upload_path(signed_server) if put else FILE_PATH
    if sign_it and expires.isascii() and expires.isdigit() and len(expires) < 4000:
        signature = sign(_key(signed_server), path, int(expires))
    query = _encode([("expires", expires), ("signature", signature), *extra])
    headers: dict[str, str] = dict(UPLOAD_HEADERS) if put else {}
    if range_ is not None and range_.isascii():
        headers["range"] = range_
    r = _send(signed_server, "PUT" if put else "GET", path, query, headers, b"data" if put else b"")
    assert r.status_code < 500, (query[:200], r.status_code, r.text[:300])


def test_fuzz_left_no_traceback(signed_server: Server) -> None:
    """The fuzz run above logged no traceback (runs after it in file order)."""
    _assert_clean(signed_server)
