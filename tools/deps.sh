#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages the build, the tests and the
# benchmarks need, and only those that are missing. Called by `make deps`.
set -euo pipefail

packages=(
  gcc libc6-dev make pkg-config
  libmicrohttpd-dev libjansson-dev libpq-dev libcurl4-openssl-dev
  libsqlite3-dev uuid-dev libpcre2-dev libcriterion-dev
  postgresql postgresql-contrib prometheus
  python3 python3-pytest json-schema-test-suite
  curl wrk shellcheck docker-compose
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; run as root or install: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The postgresql package would start a system cluster; the tests make their own.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
