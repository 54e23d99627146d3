#!/usr/bin/env bash
# unit.sh TEST... - run the Criterion unit test binaries; fail on any failed
# test and, in sanitizer builds, on any sanitizer report (Criterion counts a
# test that leaks as passed, so the output is searched as well).
set -uo pipefail
# Criterion's runner leaks a block of its own now and then (see lsan.supp).
here=$(cd "$(dirname "$0")" && pwd)
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
status=0
out=$(mktemp)
for t in "$@"; do
  echo "== $t"
  "$t" --jobs 2 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "unit: $t exited $rc"
    status=1
  fi
  if grep -qE 'LeakSanitizer|AddressSanitizer|runtime error:' "$out"; then
    echo "unit: $t: sanitizer report above"
    status=1
  fi
done
rm -f "$out"
exit $status
