#!/usr/bin/env bash
# with-pg.sh CMD... - run CMD with ESKIT_TEST_PG_URL set to a private,
# throw-away PostgreSQL cluster (initdb in a temp dir, stopped afterwards).
# The unit tests of common/db use it; integration tests make their own.
set -euo pipefail
PG_BIN=/usr/lib/postgresql/15/bin
dir=$(mktemp -d /tmp/eskit-pg.XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/log" \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
export ESKIT_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
"$@"
