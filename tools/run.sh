#!/usr/bin/env bash
# run.sh BIN_DIR - `make run`: start every service on SQLite (data in ./data),
# print where they listen and a first curl, and stop them all on Ctrl-C.
set -euo pipefail
bin=$1
mkdir -p data
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

start() { # name port
  if [ -x "$bin/eskit-$1" ]; then
    ESKIT_LISTEN="127.0.0.1:$2" "$bin/eskit-$1" 2>>"data/$1.log" &
    pids+=($!)
    printf '  %-18s http://127.0.0.1:%s   (log: data/%s.log)\n' "$1" "$2" "$1"
  fi
}

echo "eskit: starting the services on SQLite (files in $(pwd)/data)"
start event-store 8080
start crud-store 8081
start consumer-store 8082
start metrics-consumer 8083
sleep 0.5
cat <<'TOUR'

Try:
  curl -s -XPOST localhost:8080/v1/events \
       -d '{"originator":{"id":"u1"},"event_type":"User.Created","payload":{"email":"ada@example.com"}}'
  curl -s localhost:8080/v1/events/u1
  curl -s 'localhost:8080/v1/logs?from_id=1'
  curl -s -XPOST localhost:8081/v1/entities/User -d '{"payload":{"email":"ada@example.com"}}'

Ctrl-C stops everything.
TOUR
wait
