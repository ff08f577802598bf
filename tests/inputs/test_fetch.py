"""The SSRF guard and the streaming fetch, in-process against a loopback TLS media server."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest

from ltxserve.inputs.fetch import (
    FetchLimit,
    FetchPolicy,
    FetchRefused,
    GuardedBackend,
    address_problem,
    check_url,
    fetch_to_file,
    is_ip_literal,
    parse_allow_entry,
)
from tests.inputs.mediaserver import MediaServer

LIMIT = FetchLimit(1024 * 1024, 5.0)
PAYLOAD = b"\x89PNG\r\n\x1a\n" + b"x" * 5000


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    srv = MediaServer(tmp_path_factory.mktemp("tls")).start()
    srv.add("/ok.png", PAYLOAD, "image/png")
    srv.redirect("/redirect", srv.url("/ok.png"))
    srv.add("/big", b"y" * (LIMIT.max_bytes + 1))
    srv.add("/chunked-big", b"", chunks=lambda: (b"z" * 65536 for _ in range(40)))
    srv.add("/slow", b"", chunks=lambda: (b"s" * 10 for _ in range(100)), delay=0.2)
    srv.add("/lying-length", b"q" * 100, headers={"Content-Length": str(10**12)})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    srv = MediaServer(tmp_path_factory.mktemp("plain"), tls=False).start()
    srv.add("/ok.png", PAYLOAD, "image/png")
    yield srv
    srv.stop()


def policy(media: MediaServer, *hosts: str, **kw: object) -> FetchPolicy:
    return FetchPolicy(
        allow_hosts=frozenset(parse_allow_entry(h) for h in hosts), ca_file=media.ca_file, **kw
    )  # type: ignore[arg-type]


def refused(url: str, pol: FetchPolicy, dest: Path, limit: FetchLimit = LIMIT) -> str:
    with pytest.raises(FetchRefused) as info:
        fetch_to_file(url, dest, policy=pol, limit=limit)
    assert not dest.exists(), "a refused fetch leaves no file behind"
    return str(info.value)


def test_allowlisted_host_is_fetched(media: MediaServer, tmp_path: Path) -> None:
    dest = tmp_path / "f"
    res = fetch_to_file(
        media.url("/ok.png"), dest, policy=policy(media, f"localhost:{media.port}"), limit=LIMIT
    )
    assert dest.read_bytes() == PAYLOAD
    assert res.size == len(PAYLOAD) and res.content_type == "image/png"
    # the host-only form of an entry allows every port
    fetch_to_file(media.url("/ok.png"), dest, policy=policy(media, "LOCALHOST"), limit=LIMIT)


def test_default_policy_refuses_loopback_names_and_literals(
    media: MediaServer, tmp_path: Path
) -> None:
    pol = policy(media)
    msg = refused(media.url("/ok.png"), pol, tmp_path / "f")
    assert "localhost" in msg and "loopback" in msg
    for host in ("127.0.0.1", "[::1]", "2130706433", "127.1", "0x7f.0.0.1"):
        assert "IP address hosts are not allowed" in refused(
            media.url("/ok.png", host), pol, tmp_path / "f"
        )
    # an allowlist entry for another port does not open this one
    assert "loopback" in refused(media.url("/ok.png"), policy(media, "localhost:1"), tmp_path / "f")
    assert not media.hits or all(h[0] != "/never" for h in media.hits)


def test_allowlisted_ip_literal(media: MediaServer, tmp_path: Path) -> None:
    dest = tmp_path / "f"
    res = fetch_to_file(
        media.url("/ok.png", "127.0.0.1"),
        dest,
        policy=policy(media, f"127.0.0.1:{media.port}"),
        limit=LIMIT,
    )
    assert dest.read_bytes() == PAYLOAD
    assert res.size == len(PAYLOAD) and res.content_type == "image/png"
    assert media.hits[-1] == ("/ok.png", f"127.0.0.1:{media.port}")  # the literal, not a name


def test_http_needs_allow_http(plain: MediaServer, media: MediaServer, tmp_path: Path) -> None:
    host = f"localhost:{plain.port}"
    assert "http:// URLs are not allowed" in refused(
        plain.url("/ok.png"), policy(media, host), tmp_path / "f"
    )
    res = fetch_to_file(
        plain.url("/ok.png"),
        tmp_path / "f",
        policy=policy(media, host, allow_http=True),
        limit=LIMIT,
    )
    assert (tmp_path / "f").read_bytes() == PAYLOAD and res.size == len(PAYLOAD)
    # allow_http does not lift the address checks
    assert "loopback" in refused(
        plain.url("/ok.png"), policy(media, allow_http=True), tmp_path / "f"
    )


def test_redirects_are_not_followed(media: MediaServer, tmp_path: Path) -> None:
    before = len(media.hits)
    msg = refused(media.url("/redirect"), policy(media, "localhost"), tmp_path / "f")
    assert "redirect" in msg and "302" in msg
    assert [h[0] for h in media.hits[before:]] == ["/redirect"]


def test_http_errors(media: MediaServer, tmp_path: Path) -> None:
    assert "HTTP 404" in refused(media.url("/missing"), policy(media, "localhost"), tmp_path / "f")


def test_size_limit_from_header_and_while_streaming(media: MediaServer, tmp_path: Path) -> None:
    pol = policy(media, "localhost")
    for path in ("/big", "/chunked-big", "/lying-length"):
        assert "larger than the 1 MB limit" in refused(media.url(path), pol, tmp_path / "f"), path


def test_whole_download_timeout(media: MediaServer, tmp_path: Path) -> None:
    msg = refused(
        media.url("/slow"),
        policy(media, "localhost"),
        tmp_path / "f",
        FetchLimit(LIMIT.max_bytes, 1.0),
    )
    assert "did not finish within 1 s" in msg


def test_untrusted_certificate(media: MediaServer, tmp_path: Path) -> None:
    pol = FetchPolicy(allow_hosts=frozenset({("localhost", None)}))  # no CA file
    assert "certificate" in refused(media.url("/ok.png"), pol, tmp_path / "f")


def test_resolved_once_and_connected_to_the_checked_address(
    media: MediaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the address checked is the address connected to; the name stays the name."""
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"] if len(calls) == 1 else ["127.0.0.1"]

    # No packet may leave this machine: the socket-level connect is redirected to the
    # loopback media server, and records the address the guard asked for.
    connects: list[str] = []
    real = httpcore.SyncBackend.connect_tcp

    def loopback_connect(self: Any, host: str, port: int, *args: Any, **kw: Any) -> Any:
        connects.append(host)
        return real(self, "127.0.0.1", port, *args, **kw)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", loopback_connect)
    pol = FetchPolicy(ca_file=media.ca_file, resolver=rebinding)
    backend = GuardedBackend(pol)
    fetch_to_file(
        f"https://media.test:{media.port}/ok.png",
        tmp_path / "f",
        policy=pol,
        limit=LIMIT,
        backend=backend,
    )
    assert calls == ["media.test"]  # resolved once
    assert connects == ["93.184.216.34"] == [backend.connected]  # to the checked address
    assert media.hits[-1] == ("/ok.png", f"media.test:{media.port}")  # Host (and SNI) kept
    monkeypatch.undo()

    # a name whose answer is loopback is refused before any connection
    pol = FetchPolicy(ca_file=media.ca_file, resolver=lambda h, p: ["127.0.0.1"])
    before = len(media.hits)
    assert "loopback" in refused(f"https://media.test:{media.port}/ok.png", pol, tmp_path / "f")
    assert len(media.hits) == before
    # any bad address among several refuses the name
    pol = FetchPolicy(ca_file=media.ca_file, resolver=lambda h, p: ["93.184.216.34", "10.1.2.3"])
    assert "private" in refused(f"https://media.test:{media.port}/ok.png", pol, tmp_path / "f")

    # allowlisted: connects to the resolved IP, with SNI, certificate and Host of the name
    pol = FetchPolicy(
        ca_file=media.ca_file,
        allow_hosts=frozenset({("media.test", None)}),
        resolver=lambda h, p: ["127.0.0.1"],
    )
    backend = GuardedBackend(pol)
    fetch_to_file(
        f"https://media.test:{media.port}/ok.png",
        tmp_path / "f",
        policy=pol,
        limit=LIMIT,
        backend=backend,
    )
    assert backend.connected == "127.0.0.1"
    assert media.hits[-1] == ("/ok.png", f"media.test:{media.port}")


def test_unresolvable_host(tmp_path: Path) -> None:
    assert "could not resolve host" in refused(
        "https://host.invalid/x.png", FetchPolicy(), tmp_path / "f"
    )


@pytest.mark.parametrize(
    ("addr", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2001::1", "reserved"),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(addr: str, problem: str | None) -> None:
    got = address_problem(ipaddress.ip_address(addr))
    assert (got is None) == (problem is None), (addr, got)
    if problem in ("loopback", "link-local", "multicast", "unspecified"):
        assert got == problem, (addr, got)


def test_url_forms() -> None:
    pol = FetchPolicy()
    for host in ("127.0.0.1", "::1", "2130706433", "127.1", "0x7f.0.0.1", "1.2.3.4."):
        assert is_ip_literal(host), host
    for host in ("example.com", "a1.example", "xn--bcher-kva.de"):
        assert not is_ip_literal(host), host
    for url, msg in [
        ("ftp://example.com/x", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://user:pw@example.com/x", "credentials"),
        ("https://example.com:99999/x", "port"),
        ("https://exa mple.com/x", "not a valid domain"),
        ("https:///x", "no host"),
        ("http://example.com/x", "http://"),
    ]:
        with pytest.raises(FetchRefused, match=msg):
            check_url(url, pol)
    assert check_url("https://bücher.de/x", pol).raw_host == b"xn--bcher-kva.de"
    assert parse_allow_entry("[::1]:8443") == ("::1", 8443)
    assert parse_allow_entry("Example.COM") == ("example.com", None)
    assert parse_allow_entry("::1") == ("::1", None)
    assert parse_allow_entry("example.com:http") == ("example.com", -1)  # matches nothing


def test_a_hung_dns_lookup_is_bounded_by_the_fetch_timeout(
    media: MediaServer, tmp_path: Path
) -> None:
    release = threading.Event()

    def silent_dns(host: str, port: int) -> list[str]:
        release.wait(30)  # a resolver that never answers (getaddrinfo has no deadline)
        return ["93.184.216.34"]

    pol = FetchPolicy(ca_file=media.ca_file, resolver=silent_dns)
    started = time.monotonic()
    message = refused(
        f"https://media.test:{media.port}/ok.png", pol, tmp_path / "f", FetchLimit(1024 * 1024, 1.0)
    )
    assert "could not resolve host media.test within 1 s" in message
    assert time.monotonic() - started < 3
    release.set()

    # a resolver failure inside the deadline keeps its own message
    def nxdomain(host: str, port: int) -> list[str]:
        raise FetchRefused(f"could not resolve host {host}")

    pol = FetchPolicy(ca_file=media.ca_file, resolver=nxdomain)
    assert (
        refused(f"https://media.test:{media.port}/ok.png", pol, tmp_path / "f")
        == "could not resolve host media.test"
    )
