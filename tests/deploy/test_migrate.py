"""`ltxserve migrate` once per deploy, and processes that refuse a schema behind them.

Everything runs as real processes (`python -m ltxserve.cli ...`) on a real SQLite file
or PostgreSQL database, as a deploy would: a migration step, then API processes and
workers with LTXSERVE_MIGRATE=never.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from ltxserve.config import EX_CONFIG
from ltxserve.jobs.store.db import alembic_config
from tests.core.test_submit import T2V
from tests.support import FAST_ENV, Server, free_port, wait_terminal

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
NEVER = {"LTXSERVE_MIGRATE": "never"}


def run(
    args: list[str], db_url: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # every process of a deploy shares the secret (refused without it on PostgreSQL)
    full = {**FAST_ENV, "LTXSERVE_SECRET": "deploy-test", "LTXSERVE_DATABASE_URL": db_url}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ltxserve.cli", *args, "--data-dir", str(data_dir)],
        env={**_base_env(), **full},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LTXSERVE_")}


def revisions(db_url: str) -> list[str]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return []
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def tables(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def upgrade_to(db_url: str, revision: str) -> None:
    """A database an older release migrated: the schema at ``revision``."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def test_migrate_brings_an_empty_database_to_head_and_says_so(db_url: str, tmp_path: Path) -> None:
    # the loopback server trusts its clients, so a password is accepted and ignored
    url = db_url.replace("postgres@", "postgres:pass-word-42@")
    out = run(["migrate"], url, tmp_path)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert out.stdout.splitlines()[-1] == f"schema: none (an empty database) -> {HEAD} (head)"
    assert "pass-word-42" not in out.stdout + out.stderr  # the URL is shown without it
    assert url == db_url or "postgres:***@" in out.stdout
    assert revisions(db_url) == [HEAD]
    assert {"jobs", "api_keys", "uploads"} <= tables(db_url)

    again = run(["migrate"], db_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"schema: at {HEAD} (head); nothing to do"


def test_migrate_upgrades_a_database_an_older_release_left(db_url: str, tmp_path: Path) -> None:
    upgrade_to(db_url, "0002")
    out = run(["migrate"], db_url, tmp_path)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert out.stdout.splitlines()[-1] == f"schema: 0002 -> {HEAD} (head)"
    assert revisions(db_url) == [HEAD]


@pytest.mark.parametrize("process", ["serve", "worker"])
def test_never_refuses_a_schema_behind_with_one_line_naming_migrate(
    process: str, db_url: str, tmp_path: Path
) -> None:
    """With LTXSERVE_MIGRATE=never an API process or worker on a database an older
    release migrated stops at once (exit 78) and says what to run; it changes nothing."""
    upgrade_to(db_url, "0002")
    args = (
        ["serve", "--port", str(free_port()), "--workers", "1", "--engine", "minimal"]
        if process == "serve"
        else ["worker", "--engine", "minimal"]
    )
    out = run(args, db_url, tmp_path, NEVER)
    assert out.returncode == EX_CONFIG, (out.stdout, out.stderr)
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f"ltxserve {process}: configuration error:"), out.stderr
    assert "`ltxserve migrate`" in line and "revision 0002" in line and HEAD in line
    assert "setting: LTXSERVE_MIGRATE" in line and "docs/deployment.md" in line
    assert "Traceback" not in out.stdout + out.stderr
    assert revisions(db_url) == ["0002"]  # it migrated nothing


def test_never_starts_once_migrate_has_run(
    db_url: str, tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    """The deploy sequence: processes refuse an empty database (and create nothing in
    it), `ltxserve migrate` runs once, then the same processes start and run jobs."""
    env = {**NEVER, "LTXSERVE_DATABASE_URL": db_url, "LTXSERVE_SECRET": "deploy-test"}
    refused = run(["serve", "--port", str(free_port()), "--workers", "0"], db_url, tmp_path, env)
    assert refused.returncode == EX_CONFIG, (refused.stdout, refused.stderr)
    assert "the database has no schema yet" in refused.stderr
    assert not {"jobs", "alembic_version"} & tables(db_url)

    assert run(["migrate"], db_url, tmp_path).returncode == 0
    srv = make_server(env=env, workers=1, data_dir=tmp_path / "api")
    with srv.client() as c:
        job = c.post("/v2/text-to-video", json=T2V)
        assert job.status_code == 202, job.text
        assert wait_terminal(c, "text-to-video", job.json()["id"])["status"] == "completed"


def test_migrations_started_together_run_one_after_the_other(db_url: str, tmp_path: Path) -> None:
    """Two deploy pipelines (or a retried Job) at once: one upgrades, the others wait
    for it on the lock and find nothing to do; none fails on half-made tables."""
    n = 4
    full = {**_base_env(), **FAST_ENV, "LTXSERVE_DATABASE_URL": db_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ltxserve.cli", "migrate", "--data-dir", str(tmp_path)],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, outs
    last = [stdout.splitlines()[-1] for stdout, _ in outs]
    assert sorted(last) == sorted(
        [f"schema: none (an empty database) -> {HEAD} (head)"]
        + [f"schema: at {HEAD} (head); nothing to do"] * (n - 1)
    ), outs
    assert revisions(db_url) == [HEAD]


def test_migrate_leaves_a_newer_schema_alone(db_url: str, tmp_path: Path) -> None:
    """A rollback: an older release's `migrate` meets a schema a newer one made."""
    upgrade_to(db_url, "head")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    out = run(["migrate"], db_url, tmp_path)
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert f"at 9999, newer than this release's head {HEAD}; nothing to do" in out.stdout
    assert revisions(db_url) == ["9999"]


def test_an_unknown_migrate_mode_names_the_setting(tmp_path: Path) -> None:
    out = run(
        ["worker"], f"sqlite:///{tmp_path / 'x.db'}", tmp_path, {"LTXSERVE_MIGRATE": "sometimes"}
    )
    assert out.returncode == EX_CONFIG
    assert "LTXSERVE_MIGRATE" in out.stderr and "'auto' or 'never'" in out.stderr
