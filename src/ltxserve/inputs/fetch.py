"""HTTPS inputs, fetched behind an SSRF guard.

The rules (docs/inputs.md):

- ``https://`` only; ``http://`` only when ``allow_http`` is set.
- Domain names only: a host that is an IP literal (``127.0.0.1``, ``[::1]``,
  ``2130706433``) is refused, and so is a name that resolves to a loopback,
  private, link-local, multicast, reserved or otherwise non-global address. A
  name with several addresses is refused if any of them is such an address.
- The check is made on the address actually connected to: the name is resolved
  once, inside the connection backend, the addresses are checked, and the socket
  is opened to a checked address. TLS still verifies the certificate against the
  name (SNI) and the ``Host`` header carries the name, so there is no window for
  DNS rebinding between the check and the connect.
- Entries of ``fetch_allow_hosts`` (``host`` or ``host:port``) skip the address
  checks (and the IP-literal rule) for that host; nothing else is relaxed.
- No redirects, no proxies from the environment, no content decoding; the size
  limit is checked against ``Content-Length`` and again while the body streams to
  disk, and the whole download must finish within its timeout. Resolving the
  name counts against that timeout too: getaddrinfo has no deadline of its own
  (a silent DNS server holds it for its retries, 10-20 s), so it runs on a helper
  thread that is abandoned, not waited for, when time runs out.

Every refusal raises ``FetchRefused`` with a message for the client; the caller
(``ltxserve.inputs``) prefixes the field name and raises it as the client's
``InvalidRequestError`` (400). ``FetchRefused`` itself is a plain ``Exception``, not
an ``LtxError``: this module knows nothing of the API's error vocabulary.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import httpx

from ltxserve import __version__
from ltxserve.config import Settings
from ltxserve.wire_numbers import parse_uint

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
MiB = 1024 * 1024

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_CHARS = re.compile(r"^[a-z0-9._-]+$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class FetchRefused(Exception):
    """The URL may not be fetched, or fetching it failed; ``str()`` is the client's message."""


class AddressRefused(FetchRefused):
    """The host resolves to an address the guard refuses (retrying will not help)."""


@dataclass(frozen=True)
class FetchLimit:
    max_bytes: int
    timeout: float


IMAGE_FETCH = FetchLimit(15 * MiB, 10.0)
MEDIA_FETCH = FetchLimit(32 * MiB, 30.0)  # audio and video


@dataclass(frozen=True)
class FetchResult:
    size: int
    content_type: str | None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused(f"could not resolve host {host}") from exc
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in out:
            out.append(addr)
    return out


def resolve_within(resolver: Resolver, host: str, port: int, timeout: float | None) -> list[str]:
    """``resolver(host, port)``, or FetchRefused once ``timeout`` seconds have passed."""
    if timeout is None:
        return resolver(host, port)
    answer: list[list[str] | BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            answer.append(resolver(host, port))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            answer.append(exc)
        done.set()

    threading.Thread(target=work, name=f"resolve-{host}", daemon=True).start()
    if not done.wait(timeout):
        raise FetchRefused(f"could not resolve host {host} within {timeout:g} s")
    result = answer[0]
    if isinstance(result, BaseException):
        raise result
    return result


def address_problem(ip: IPAddress) -> str | None:
    """Why an address may not be fetched from (``None``: it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
        if ip.teredo is not None:
            return "reserved"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


def is_ip_literal(host: str) -> bool:
    """True for IP addresses in any spelling a resolver accepts (``127.1``, ``0x7f.0.0.1``)."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    last = bare.rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(_NUMERIC_LABEL.match(last))


def parse_allow_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address.

    An entry with a port that is not a number matches nothing (port -1).
    """
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, ""
    host = host.rstrip(".")
    if not port:
        return host, None
    number = parse_uint(port, 5)
    return host, -1 if number is None else number


@dataclass(frozen=True)
class FetchPolicy:
    allow_http: bool = False
    allow_hosts: frozenset[tuple[str, int | None]] = frozenset()
    ca_file: Path | None = None
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> FetchPolicy:
        return cls(
            allow_http=settings.allow_http,
            allow_hosts=frozenset(parse_allow_entry(e) for e in settings.fetch_allow_hosts),
            ca_file=settings.fetch_ca_file,
            resolver=resolver or system_resolver,
        )

    def allowlisted(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]").rstrip(".")
        return (host, None) in self.allow_hosts or (host, port) in self.allow_hosts

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.ca_file is not None:
            ctx.load_verify_locations(cafile=str(self.ca_file))
        return ctx


class GuardedBackend(httpcore.SyncBackend):
    """Resolves once, checks every address, and connects to a checked address only."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.connected: str | None = None  # the address the last connection went to

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_within(self.policy.resolver, host, port, timeout)
        if not addresses:
            raise FetchRefused(f"could not resolve host {host}")
        if not self.policy.allowlisted(host, port):
            for addr in addresses:
                try:
                    problem = address_problem(ipaddress.ip_address(addr))
                except ValueError:
                    problem = "unparsable"
                if problem:
                    raise AddressRefused(
                        f"host {host} resolves to a {problem} address; fetching from "
                        "loopback, private, link-local, multicast or reserved addresses "
                        "is not allowed"
                    )
        last: Exception | None = None
        for addr in addresses:
            try:
                stream = super().connect_tcp(addr, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self.connected = addr
            return stream
        assert last is not None
        raise last


MAX_HOST_LENGTH = 253  # RFC 1035: a name of at most 253 characters (without a final dot)
MAX_LABEL_LENGTH = 63  # and labels of at most 63


def valid_domain(host: str) -> bool:
    """A DNS name: letters, digits, '-', '_' in dot-separated labels of 1-63, 253 at most."""
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > MAX_HOST_LENGTH or not _HOST_CHARS.match(name):
        return False
    return all(0 < len(label) <= MAX_LABEL_LENGTH for label in name.split("."))


def check_url(url: str, policy: FetchPolicy) -> httpx.URL:
    """The static part of the guard: scheme, host form, port. Raises FetchRefused."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FetchRefused("is not a valid URL") from None
    if u.scheme == "http":
        if not policy.allow_http:
            raise FetchRefused("http:// URLs are not allowed; use https://")
    elif u.scheme != "https":
        raise FetchRefused("only https:// URLs can be fetched")
    if u.userinfo:
        raise FetchRefused("URLs with credentials are not allowed")
    host = u.raw_host.decode("ascii", "replace").lower()
    if not host:
        raise FetchRefused("the URL has no host")
    # an explicit port 0 is falsy: compare with None, not `or` (issue 17)
    port = u.port if u.port is not None else (443 if u.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise FetchRefused(f"port {port} is not valid")
    literal = is_ip_literal(host)
    if not literal and not valid_domain(host):
        shown = host if len(host) <= 80 else f"{host[:60]}... ({len(host)} characters)"
        raise FetchRefused(f"host {shown} is not a valid domain name")
    if literal and not policy.allowlisted(host, port):
        raise FetchRefused("IP address hosts are not allowed; use a domain name")
    return u


def fetch_to_file(
    url: str,
    dest: Path,
    *,
    policy: FetchPolicy,
    limit: FetchLimit,
    on_chunk: Callable[[], None] | None = None,
    backend: GuardedBackend | None = None,
) -> FetchResult:
    """Stream ``url`` into ``dest`` under the guard and ``limit``; raise FetchRefused."""
    u = check_url(url, policy)
    backend = backend or GuardedBackend(policy)
    t = limit.timeout
    deadline = time.monotonic() + t
    target = httpcore.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port, target=u.raw_path)
    headers = [
        (b"Host", u.netloc),
        (b"User-Agent", f"ltxserve/{__version__}".encode()),
        (b"Accept", b"*/*"),
        (b"Accept-Encoding", b"identity"),
    ]
    mb = limit.max_bytes / MiB
    too_large = f"the file is larger than the {mb:g} MB limit for this input"
    try:
        with (
            httpcore.ConnectionPool(
                ssl_context=policy.ssl_context(),
                network_backend=backend,
                max_connections=1,
                retries=0,
            ) as pool,
            pool.stream(
                "GET",
                target,
                headers=headers,
                extensions={"timeout": {"connect": t, "read": t, "write": t, "pool": t}},
            ) as resp,
        ):
            status = resp.status
            if 300 <= status < 400:
                raise FetchRefused(
                    f"the URL answered a redirect (HTTP {status}); redirects are not followed"
                )
            if status != 200:
                raise FetchRefused(f"the URL answered HTTP {status}")
            head = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers}
            declared = parse_uint(head.get("content-length", "").strip())
            if declared is not None and declared > limit.max_bytes:
                raise FetchRefused(too_large)
            size = 0
            with dest.open("wb") as out:
                for chunk in resp.iter_stream():
                    size += len(chunk)
                    if size > limit.max_bytes:
                        raise FetchRefused(too_large)
                    if time.monotonic() > deadline:
                        raise FetchRefused(f"the download did not finish within {t:g} s")
                    out.write(chunk)
                    if on_chunk is not None:
                        on_chunk()
            return FetchResult(size, head.get("content-type"))
    except FetchRefused:
        dest.unlink(missing_ok=True)
        raise
    except httpcore.TimeoutException:
        dest.unlink(missing_ok=True)
        raise FetchRefused(f"the download did not finish within {t:g} s") from None
    except (
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
        OSError,
    ) as exc:
        dest.unlink(missing_ok=True)
        raise FetchRefused(f"the URL could not be fetched ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "TLS certificate verification failed"
    if isinstance(exc, httpcore.ConnectError):
        return "connection failed"
    if isinstance(exc, httpcore.ProtocolError):
        return "the server broke the HTTP protocol"
    return "network error"
