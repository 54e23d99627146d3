#!/usr/bin/env bash
# docker-entrypoint.sh - the postgres stand-in's entrypoint (see Dockerfile).
#
# As root: gives $PGDATA (and whatever in it another uid owns: a volume
# from an older image) to postgres, and runs itself again as postgres.
# As postgres, when $PGDATA holds no cluster: initdb with POSTGRES_USER
# (default postgres) as the superuser and POSTGRES_PASSWORD as its password
# (required, as in the real image, unless POSTGRES_HOST_AUTH_METHOD=trust),
# scram-sha-256 for TCP connections from anywhere and trust on the local
# socket; then POSTGRES_DB (default: the user's name) created in single-user
# mode, so that no server listens before the database is there. Then the
# command: `postgres` (with listen_addresses='*') or anything else as given.
set -euo pipefail

if [ "${1:-}" = postgres ] && [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$PGDATA"
  find "$PGDATA" ! -user postgres -exec chown postgres:postgres {} +
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "docker-entrypoint.sh: POSTGRES_PASSWORD is empty (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  echo "docker-entrypoint.sh: initialising $PGDATA (user $user, database $db)"
  initdb -D "$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    --auth-local=trust --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  printf 'host all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # An identifier in double quotes, its own double quotes doubled.
    printf 'CREATE DATABASE "%s" OWNER "%s"\n' "${db//\"/\"\"}" "${user//\"/\"\"}" |
      postgres --single -D "$PGDATA" -c listen_addresses='' postgres >/dev/null
  fi
  echo "docker-entrypoint.sh: $PGDATA is ready"
fi

if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
