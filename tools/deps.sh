#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages the build, the tests and the
# benchmarks need, and only those that are missing. Called by `make deps`.
set -euo pipefail

packages=(
  gcc libc6-dev make pkg-config
  libmicrohttpd-dev libjansson-dev libpq-dev libcurl4-openssl-dev
  libsqlite3-dev uuid-dev libpcre2-dev libcriterion-dev
  clang libclang-rt-14-dev
  postgresql postgresql-contrib postgresql-15-auto-failover prometheus
  python3 python3-pytest python3-pytest-xdist python3-yaml python3-jsonschema
  json-schema-test-suite
  curl wrk shellcheck docker-compose
  docker.io debootstrap debian-archive-keyring
)
# docker.io brings dockerd, containerd, runc, tini and iptables (its
# dependencies); the deploy test runs its own dockerd (tools/docker/dockerd.sh),
# and debootstrap makes the Debian base image that no registry supplies here.
# On a machine without /usr/sbin/policy-rc.d, installing docker.io also starts
# the system's Docker engine; the tests neither use nor stop it.
# Node and npm run the deploy validators (below); a node installed another way
# (not from Debian) is fine, so the packages are only wanted when the commands
# are missing.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: not root; run as root or install: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The postgresql package would start a system cluster; the tests make their own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node validators of tests/integration/test_deploy.py (Kubernetes schemas,
# OpenAPI lint, Dockerfile lint), pinned by tests/deploy/package-lock.json.
# Installed when missing or older than the lock file; offline afterwards.
deploy_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/deploy"
if [ ! -d "$deploy_dir/node_modules" ] ||
   [ "$deploy_dir/package-lock.json" -nt "$deploy_dir/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null; then
    echo "deps: npm is missing; install the nodejs and npm packages" >&2
    exit 1
  fi
  echo "deps: installing the Node validators in tests/deploy"
  npm ci --prefix "$deploy_dir" --no-audit --no-fund --loglevel=error >/dev/null
fi
