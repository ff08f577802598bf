from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Server

ENGINE = os.environ.get("LTXSERVE_TEST_ENGINE", "minimal")
FIGURES = "figures"  # user_properties key of a fault test's counts (tests/faults/conftest.py)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared server (API + 1 worker) for tests that only submit and poll."""
    srv = Server(tmp_path_factory.mktemp("server"), engine=ENGINE).start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers with their own settings (env) and data dirs; stopped after the test."""
    started: list[Server] = []

    def make(
        env: dict[str, str] | None = None,
        workers: int = 1,
        engine: str = ENGINE,
        data_dir: Path | None = None,
    ) -> Server:
        srv = Server(
            data_dir or tmp_path / f"srv{len(started)}",
            env=env or {},
            workers=workers,
            engine=engine,
        ).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


# The modules whose tests take 30 s or more (scripts/test.sh's --durations log): they
# start first, so that the parallel processes (pytest-xdist) do not wait at the end of
# the run on one of them begun last. Whole modules move, keeping their own order.
LONG_FIRST = (
    "tests/test_readme.py",
    "tests/faults/",
    "tests/client/test_install.py",
    "tests/store/test_credits_http.py",
    "tests/store/test_events_pg.py",
    "tests/webhooks/test_webhooks.py",
    "tests/engines/test_preview.py",
    "tests/engines/test_ltx_gpu_smoke.py",
    "tests/core/test_models.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def late(item: pytest.Item) -> bool:
        path = item.nodeid.split("::", 1)[0]
        return not any(path.startswith(prefix) for prefix in LONG_FIRST)

    items.sort(key=late)  # stable: False (long) before True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under LTXSERVE_TEST_STRICT=1 (CI) a skip is a failure: a missing browser, database
    or model library must not pass silently. Opt-in slow tests may still skip."""
    outcome = yield
    rep = outcome.get_result()
    if (
        os.environ.get("LTXSERVE_TEST_STRICT")
        and rep.skipped
        and "LTXSERVE_SLOW_TESTS" not in str(rep.longrepr)
    ):
        rep.outcome = "failed"
        rep.longrepr = f"skipped under LTXSERVE_TEST_STRICT: {rep.longrepr}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault tests' counts, gathered from the reports of every test that ran, in
    this process or in an xdist worker."""
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for rep in reports
        if getattr(rep, "when", None) == "call"
        for key, value in getattr(rep, "user_properties", ())
        if key == FIGURES
    ]
    if lines:
        terminalreporter.section("fault test figures")
        for line in lines:
            terminalreporter.write_line(line)
