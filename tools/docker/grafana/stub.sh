#!/bin/sh
# stub.sh - the Grafana stub's entrypoint (see Dockerfile): refuses to start
# unless the data source provisioning and at least one dashboard are mounted
# and readable, then serves /usr/share/grafana-stub/www on port 3000 until
# SIGTERM (busybox's httpd as PID 1 would not heed it).
set -eu
prov=${GF_PATHS_PROVISIONING:-/etc/grafana/provisioning}
ok=1
for f in "$prov"/datasources/*.yml "$prov"/dashboards/*.yml; do
  [ -r "$f" ] || { echo "stub.sh: nothing readable at $f" >&2; ok=0; }
done
boards=$(find /etc/grafana/dashboards -name '*.json' 2>/dev/null | wc -l)
[ "$boards" -gt 0 ] || { echo "stub.sh: no dashboards in /etc/grafana/dashboards" >&2; ok=0; }
[ "$ok" = 1 ] || exit 1
echo "stub.sh: Grafana stub on :3000 ($boards dashboards mounted; nothing is rendered)"
busybox httpd -f -p 3000 -h /usr/share/grafana-stub/www &
pid=$!
trap 'kill "$pid" 2>/dev/null' TERM INT
wait "$pid" || true
