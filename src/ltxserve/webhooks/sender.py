"""One webhook attempt: a signed POST through the inputs' SSRF guard.

The target gets the guard that ``*_uri`` inputs get (inputs/fetch.py): http://
only with ``allow_http``, IP-literal hosts and names resolving to loopback,
private, link-local or reserved addresses refused unless in
``fetch_allow_hosts``, the address checked on the connection actually made. No
redirects are followed (a 3xx is a failed attempt) and no proxy is used. A
refusal by the guard's rules is final (the delivery fails at once, recorded with
the reason); anything else (refused connection, timeout, a non-2xx answer) is
retried with backoff.
"""

from __future__ import annotations

import socket
import ssl
import time
from functools import cache

import httpcore

from ltxserve import __version__
from ltxserve.inputs.fetch import (
    AddressRefused,
    FetchPolicy,
    FetchRefused,
    GuardedBackend,
    check_url,
)
from ltxserve.jobs.lifecycle.deliveries import Attempt
from ltxserve.jobs.store.base import now_ms
from ltxserve.webhooks.signing import headers as signature_headers

MAX_ANSWER = 64 * 1024  # read (and drop) at most this much of the receiver's answer
# headers and body leave in two writes: without NODELAY the body waits for the
# receiver's delayed ACK (40 ms on Linux), a sixth of a second per delivery
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@cache
def _ssl_context(policy: FetchPolicy) -> ssl.SSLContext:
    """One per policy: loading the CA bundle costs more than a loopback delivery."""
    return policy.ssl_context()


def post(
    url: str,
    message_id: str,
    body: bytes,
    secret: str,
    *,
    policy: FetchPolicy,
    timeout: float,
) -> Attempt:
    started = now_ms()
    t0 = time.monotonic()

    def done(status: int | None, error: str | None, final: bool = False) -> Attempt:
        return Attempt(started, int((time.monotonic() - t0) * 1000), status, error, final)

    try:
        u = check_url(url, policy)
    except FetchRefused as exc:
        return done(None, f"refused: the URL {exc}", final=True)
    head = [
        (b"Host", u.netloc),
        (b"User-Agent", f"ltxserve/{__version__}".encode()),
        (b"Content-Type", b"application/json"),
        (b"Accept-Encoding", b"identity"),
    ]
    signed = signature_headers(secret, message_id, body, int(time.time()))
    head += [(k.encode(), v.encode()) for k, v in signed.items()]
    target = httpcore.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port, target=u.raw_path)
    try:
        with (
            httpcore.ConnectionPool(
                ssl_context=_ssl_context(policy),
                network_backend=GuardedBackend(policy),
                max_connections=1,
                retries=0,
                socket_options=NODELAY,
            ) as pool,
            pool.stream(
                "POST",
                target,
                headers=head,
                content=body,
                extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout}},
            ) as resp,
        ):
            read = 0
            for chunk in resp.iter_stream():
                read += len(chunk)
                if read >= MAX_ANSWER or time.monotonic() - t0 > timeout:
                    break
            status = resp.status
    except AddressRefused as exc:
        return done(None, f"refused: {exc}", final=True)
    except FetchRefused as exc:  # the name did not resolve: may be temporary
        return done(None, str(exc))
    except httpcore.TimeoutException:
        return done(None, f"no answer within {timeout:g} s")
    except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        return done(None, f"{exc.__class__.__name__}: {exc}"[:300])
    if 200 <= status < 300:
        return done(status, None)
    return done(status, f"the receiver answered HTTP {status}")
