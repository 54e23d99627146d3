#!/usr/bin/env bash
# lint.sh - project rules a compiler does not check (part of make test):
#  * banned C functions (unbounded or unchecked): sprintf, vsprintf, strcpy,
#    strcat, atoi, atol, gets, strtok;
#  * every .c file opens with a comment saying what it is for;
#  * no C file over 650 lines.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
status=0
files=$(git ls-files 'common/*.c' 'common/*.h' 'services/*.c' 'services/*.h' 'fuzz/*.c' \
          'fuzz/*.h' 2>/dev/null || find common services fuzz -name '*.[ch]')
for f in $files; do
  [ -f "$f" ] || continue
  if grep -nE '(^|[^_a-z])(sprintf|vsprintf|strcpy|strcat|atoi|atol|gets|strtok)[[:space:]]*\(' "$f"; then
    echo "lint: $f uses a banned function (use snprintf/buf_*, strtoll with checks)"
    status=1
  fi
  if ! head -1 "$f" | grep -q '^/\*'; then
    echo "lint: $f does not open with a comment saying what it is for"
    status=1
  fi
  lines=$(wc -l < "$f")
  if [ "$lines" -gt 650 ]; then
    echo "lint: $f has $lines lines (split it: one file, one job)"
    status=1
  fi
done
[ $status -eq 0 ] && echo "lint: ok"
exit $status
