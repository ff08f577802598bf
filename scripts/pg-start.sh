#!/usr/bin/env bash
# Start a throwaway PostgreSQL on loopback for the test suite; print its URL.
# Installs Debian's postgresql when no server binaries are present.
set -euo pipefail
PORT="${PGPORT_TEST:-54329}"
DIR="${PGDATA_TEST:-/tmp/ltxserve-pg}"
bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && bindir="$d"; done
if [ -z "$bindir" ]; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq postgresql) >&2
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && bindir="$d"; done
fi
id postgres >/dev/null 2>&1 || useradd --system --home "$DIR" postgres
run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
if ! run "$bindir/pg_ctl -D $DIR status" >/dev/null 2>&1; then
  rm -rf "$DIR"; mkdir -p "$DIR"; [ "$(id -u)" = 0 ] && chown postgres "$DIR"
  run "$bindir/initdb -D $DIR -U postgres --auth=trust -E UTF8" >/dev/null
  run "$bindir/pg_ctl -D $DIR -l $DIR/log -o '-k /tmp -h 127.0.0.1 -p $PORT -c fsync=off -c max_connections=500' -w start" >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
