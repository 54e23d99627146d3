#!/usr/bin/env bash
# run.sh BIN_DIR - the benchmarks (make bench). Starts a private PostgreSQL
# cluster, the services on it, and compares them with pgbench in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
ESKIT_BIN_DIR="$1" exec /usr/bin/python3 bench/bench.py
