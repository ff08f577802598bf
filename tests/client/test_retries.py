"""Retry behaviour on a real socket: injected 429/500/503 answers and dropped connections.

The proxy answers the first N matching requests itself and forwards the rest to the
real server. The log shows how many attempts reached it, and when.
"""

from __future__ import annotations

import time

import pytest

from ltxserve.client import (
    APIConnectionError,
    Client,
    ConcurrencyLimitError,
    ContentFilteredError,
    InsufficientFundsError,
    RateLimitError,
    ServiceUnavailableError,
)
from tests.client.conftest import FAST, SMALL
from tests.client.proxy import FaultProxy
from tests.support import Server


def test_503_is_retried_until_the_real_answer(client: Client, proxy: FaultProxy) -> None:
    proxy.fail(503, times=2, error_type="service_unavailable", method="POST")
    job = client.text_to_video.submit(**SMALL)
    assert [s.status for s in proxy.requests("POST")] == [503, 503, 202]
    assert client.text_to_video.wait(job, timeout=60).status == "completed"


def test_backoff_grows_between_attempts(client: Client, proxy: FaultProxy) -> None:
    proxy.fail(500, times=3, method="GET", path_prefix="/v2/text-to-video/")
    with pytest.raises(Exception):  # noqa: B017 - the unknown id ends in a 404 afterwards
        client.text_to_video.get("00000000-0000-0000-0000-000000000000")
    seen = proxy.requests("GET")
    assert [s.status for s in seen] == [500, 500, 500, 404]
    gaps = [b.at - a.at for a, b in zip(seen, seen[1:], strict=False)]
    # initial 0.05 s, doubling, capped at 0.2 s, jitter takes off at most 25 %
    for gap, nominal in zip(gaps, [0.05, 0.1, 0.2], strict=True):
        assert gap >= 0.75 * nominal - 0.01, gaps
    assert gaps[2] > gaps[0]


def test_retry_after_is_honoured_instead_of_the_backoff(client: Client, proxy: FaultProxy) -> None:
    proxy.fail(429, times=1, error_type="rate_limit_error", retry_after="1", method="POST")
    start = time.monotonic()
    client.text_to_video.submit(**SMALL)
    elapsed = time.monotonic() - start
    first, second = proxy.requests("POST")
    assert (first.status, second.status) == (429, 202)
    assert second.at - first.at >= 0.99  # the backoff alone would have been ~0.05 s
    assert elapsed < 5


def test_a_retry_after_too_long_to_sleep_raises_with_the_hint(
    server: Server, proxy: FaultProxy
) -> None:
    proxy.fail(429, times=1, error_type="concurrency_limit_error", retry_after="120")
    with (
        Client(api_key=server.api_key, base_url=proxy.url, max_retry_after=30, **FAST) as c,
        pytest.raises(ConcurrencyLimitError) as info,
    ):
        c.text_to_video.submit(**SMALL)
    assert info.value.retry_after == 120 and info.value.status_code == 429
    assert len(proxy.requests("POST")) == 1


def test_retries_run_out_and_the_last_error_is_raised(server: Server, proxy: FaultProxy) -> None:
    proxy.fail(503, times=10, error_type="service_unavailable")
    with (
        Client(api_key=server.api_key, base_url=proxy.url, max_retries=2, **FAST) as c,
        pytest.raises(ServiceUnavailableError),
    ):
        c.text_to_video.submit(**SMALL)
    assert len(proxy.requests("POST")) == 3
    proxy.reset()
    proxy.fail(429, times=10, error_type="rate_limit_error", retry_after="0")
    with (
        Client(api_key=server.api_key, base_url=proxy.url, max_retries=1, **FAST) as c,
        pytest.raises(RateLimitError),
    ):
        c.text_to_video.submit(**SMALL)
    assert len(proxy.requests("POST")) == 2


@pytest.mark.parametrize(
    ("status", "kind", "exc"),
    [
        (402, "insufficient_funds_error", InsufficientFundsError),
        (422, "content_filtered_error", ContentFilteredError),
    ],
)
def test_client_errors_are_never_retried(
    client: Client, proxy: FaultProxy, status: int, kind: str, exc: type[Exception]
) -> None:
    proxy.fail(status, times=5, error_type=kind, retry_after="0")
    with pytest.raises(exc):
        client.text_to_video.submit(**SMALL)
    assert len(proxy.requests("POST")) == 1


def test_dropped_connections_are_retried(client: Client, proxy: FaultProxy) -> None:
    proxy.drop(times=2, method="POST")
    client.text_to_video.submit(**SMALL)
    assert [s.status for s in proxy.requests("POST")] == [0, 0, 202]


def test_no_server_at_all_is_a_connection_error_after_retries() -> None:
    start = time.monotonic()
    with (
        Client(api_key="k", base_url="http://127.0.0.1:9", max_retries=2, **FAST) as c,
        pytest.raises(APIConnectionError),
    ):
        c.text_to_video.get("x")
    assert time.monotonic() - start < 3


def test_polls_and_downloads_ride_through_503s(
    client: Client, proxy: FaultProxy, tmp_path: object
) -> None:
    job = client.text_to_video.submit(**SMALL)
    proxy.fail(503, times=2, error_type="service_unavailable", method="GET", path_prefix="/v2/")
    done = client.text_to_video.wait(job, timeout=60).raise_for_status()
    proxy.fail(503, times=1, method="GET", path_prefix="/files/")
    path = client.download(done, f"{tmp_path}/out.mp4")
    assert path.stat().st_size > 0
    statuses = [s.status for s in proxy.requests("GET", "/files/")]
    assert statuses == [503, 200]
