"""The layering rules, checked on the source: JobManager is the one way in to the jobs,
and only jobs/store/ knows which database it runs on."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ltxserve"

DIALECT = re.compile(r"is_sqlite|info\[\"write\"\]|\.dialect\b")
# the clients of the manager: they may name records from jobs/store/base.py, no more
CLIENTS = [
    *sorted((SRC / "api").glob("*.py")),
    SRC / "worker.py",
    *sorted((SRC / "inputs").glob("*.py")),
    *sorted((SRC / "webhooks").glob("*.py")),
]
STORE_REACH = re.compile(
    r"jobs\.store\.(sql|db|memory|tables)\b|\bstore\.(?!base\b)\w+\(|manager\.store\.\w+\("
)


def _code(path: Path) -> str:
    """The file without comments and docstrings' prose lines (rough but enough here)."""
    text = path.read_text()
    text = re.sub(r'"""[\s\S]*?"""', "", text)
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def test_no_dialect_checks_outside_the_store() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[:2] == ("jobs", "store") or rel.parts[0] == "client":
            continue
        for n, line in enumerate(_code(path).splitlines(), 1):
            if DIALECT.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == [], offenders


def test_api_worker_and_inputs_reach_jobs_only_through_the_manager() -> None:
    offenders = []
    for path in CLIENTS:
        for n, line in enumerate(_code(path).splitlines(), 1):
            if STORE_REACH.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert offenders == [], offenders
