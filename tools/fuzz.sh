#!/usr/bin/env bash
# fuzz.sh MODE SECONDS FUZZ_DIR TARGET... - run libFuzzer targets one after
# the other (one core), each for SECONDS (FUZZ_SECONDS_<target> in the
# environment overrides one; FUZZ_RUNS > 0 also stops each after that many
# executions), and print a table of executions.
#
#   run    the working corpus FUZZ_DIR/corpus/T grows across runs; the seeds
#          of fuzz/corpus/T are read, never written
#   smoke  (make test) the seeds, then mutations, into a throw-away corpus
#
# Fails when a target crashes, leaks, trips ASan or UBSan, times out, runs
# out of memory or fails one of its own checks. Crash inputs land in
# FUZZ_DIR/artifacts/T/; the log of each target in FUZZ_DIR/logs/T.log.
set -uo pipefail
mode=$1 seconds=$2 dir=$3
shift 3
cd "$(dirname "$0")/.." || exit 2

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
rows=()
mkdir -p "$dir/logs"
for t in "$@"; do
  bin="$dir/bin/$t"
  seeds="fuzz/corpus/$t"
  log="$dir/logs/$t.log"
  mkdir -p "$dir/artifacts/$t" "$seeds"
  if [ "$mode" = smoke ]; then
    work="$dir/smoke/$t"
    rm -rf "$work"
  else
    work="$dir/corpus/$t"
  fi
  mkdir -p "$work"
  # FUZZ_SECONDS_<target> overrides the time of one target; FUZZ_RUNS > 0
  # also ends each target after that many executions
  secs_var="FUZZ_SECONDS_$t"
  args=(-max_total_time="${!secs_var:-$seconds}" -print_final_stats=1 -timeout=10
        -rss_limit_mb=2048 -max_len=4096 -artifact_prefix="$dir/artifacts/$t/")
  [ "${FUZZ_RUNS:-0}" -gt 0 ] && args+=(-runs="$FUZZ_RUNS")
  # a target's own dictionary, else the one of JSON syntax
  if [ -f "fuzz/dict/$t.dict" ]; then
    args+=(-dict="fuzz/dict/$t.dict")
  elif [ -f fuzz/dict/json.dict ]; then
    args+=(-dict=fuzz/dict/json.dict)
  fi
  echo "fuzz: $t for ${!secs_var:-$seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS runs}"
  "$bin" "${args[@]}" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  units=$(find "$work" -type f | wc -l)
  result=ok
  if [ "$rc" -ne 0 ] ||
     grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz check failed|deadly signal|ALARM: working on the last Unit|out-of-memory' "$log"; then
    result="FAILED (exit $rc)"
    status=1
    echo "fuzz: $t failed; the end of $log:"
    grep -nE 'ERROR|runtime error|fuzz check failed|SUMMARY|Test unit written|ALARM|out-of-memory' "$log" | head -20
  fi
  rows+=("$(printf '%-24s %14s %10s %7s %7s  %s' "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}" "$units" "$result")")
done
echo
printf '%-24s %14s %10s %7s %7s  %s\n' target executions exec/s cov corpus result
for r in "${rows[@]}"; do echo "$r"; done
exit $status
