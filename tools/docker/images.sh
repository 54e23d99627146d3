#!/usr/bin/env bash
# images.sh [base|standins|eskit|all|size] - the images docker-compose.yml
# needs, built on a machine that reaches the Debian mirror but no image
# registry. DOCKER_HOST names the engine (tools/docker/dockerd.sh env).
#
#   base      debian:bookworm-slim made with `debootstrap --variant=minbase`
#             and `docker import`, slimmed as Debian slims its own image: no
#             documentation but the copyright files, no man or info pages, no
#             locales, apt told to keep no caches, and a policy-rc.d that stops
#             packages from starting services. debian:bookworm (the Dockerfile's
#             build stage) is a second tag of the same image: the build stage
#             installs everything it needs itself.
#   standins  one image per Compose service that names a third-party image
#             (postgres, prometheus, grafana), built from tools/docker/<service>/
#             and tagged with the name the Compose file gives (read from
#             `docker-compose config`, so a new tag there needs no change here)
#   eskit     the project's image from the Dockerfile, as eskit:latest
#   all       the three above (the default): the base first, then the
#             stand-ins and the project's image side by side
#   size      prints eskit:latest's size in bytes
#
# An image that is there and was not made here (a real debian or postgres
# image, pulled from a registry) is used as it is. One made here is rebuilt
# only when its inputs changed: $ESKIT_DOCKER_CACHE/stamps/<image> records the
# hash of the inputs and the id of the image they gave. The Dockerfile's own
# layer cache makes an unchanged eskit image a matter of seconds.
#
# Builds run with --network host: apt in a RUN step reaches the mirror the way
# the host does, and the private engine needs no bridge of its own for it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tools/docker
CACHE=${ESKIT_DOCKER_CACHE:-/var/cache/eskit-docker}
DOCKER=${ESKIT_DOCKER:-/usr/bin/docker}
SUITE=bookworm
LABEL=org.eskit.made-by
STAMPS=$CACHE/stamps

log() { echo "images: $*" >&2; }
die() { echo "images: $*" >&2; exit 1; }

# A signal ends the script through its EXIT trap (which removes a half-made
# root file system).
trap 'kill "${jobs[@]}" 2>/dev/null; exit 143' TERM
trap 'kill "${jobs[@]}" 2>/dev/null; exit 130' INT
jobs=()   # pids of the builds running in the background

[ -n "${DOCKER_HOST:-}" ] || die "DOCKER_HOST is not set (export \"\$(tools/docker/dockerd.sh env)\")"
export DOCKER_HOST

image_id() { "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
image_label() {
  "$DOCKER" image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true
}

# up_to_date IMAGE HASH - true when IMAGE was made here from inputs of HASH
# (and is still the image that gave the stamp); false when it must be built;
# true with a note when IMAGE comes from elsewhere (used as it is).
up_to_date() {
  local id stamp
  id=$(image_id "$1")
  [ -n "$id" ] || return 1
  if [ -z "$(image_label "$1")" ]; then
    log "$1: present and not made here; using it as it is"
    return 0
  fi
  stamp=$(cat "$STAMPS/${1//\//_}" 2>/dev/null || true)
  [ "$stamp" = "$2 $id" ]
}

stamp() {
  mkdir -p "$STAMPS"
  echo "$2 $(image_id "$1")" > "$STAMPS/${1//\//_}"
}

# The first URI of the host's apt sources for a suite path ("debian" or
# "debian-security"), so that the image uses the mirror the host uses.
host_mirror() {
  local uri
  uri=$(grep -hoE "^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/$1/?([[:space:]]|$)" \
          /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
        grep -oE "https?://[^[:space:]]+" | head -1 || true)
  echo "${uri:-http://deb.debian.org/$1}"
}

# ------------------------------------------------------------------ base

# slim_rootfs DIR - what Debian's slim image leaves out, and apt's settings
# that keep it out of every image built on it.
slim_rootfs() {
  local r=$1
  cat > "$r/etc/dpkg/dpkg.cfg.d/eskit-slim" <<'EOF'
# No documentation (copyright files excepted), manuals or translations in
# this image: as in Debian's own slim images.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat > "$r/etc/apt/apt.conf.d/eskit-slim" <<'EOF'
// apt keeps no downloaded packages and no binary caches in the image, fetches
// no translations, and keeps its lists compressed.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
APT::AutoRemove::SuggestsImportant "false";
EOF
  printf '#!/bin/sh\n# No service starts while an image is built.\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
  chmod 0755 "$r/usr/sbin/policy-rc.d"
  rm -f "$r/etc/apt/sources.list"
  cat > "$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $(host_mirror debian)
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $(host_mirror debian-security)
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # What the packages installed before the rules above existed.
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/groff/* \
         "$r"/usr/share/lintian/* "$r"/usr/share/linda/*
  # Caches, logs and the host's identity.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
         "$r"/var/lib/dpkg/*-old "$r"/var/cache/ldconfig/aux-cache "$r"/tmp/* "$r"/var/tmp/*
  find "$r/var/log" -type f -delete
  : > "$r/etc/machine-id"
  rm -f "$r/etc/hostname" "$r/etc/resolv.conf"
}

# unmount_under DIR - whatever debootstrap left mounted below DIR.
unmount_under() {
  local m
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# base_rootfs DIR - the root file system of debian:$SUITE-slim, in DIR.
base_rootfs() {
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$1/root" \
    "$(host_mirror debian)" > "$1/debootstrap.log" 2>&1 || {
    tail -20 "$1/debootstrap.log" >&2
    return 1
  }
  unmount_under "$1"
  slim_rootfs "$1/root"
}

base() {
  local hash work
  hash=$( { declare -f base_rootfs slim_rootfs; host_mirror debian; host_mirror debian-security; } |
          sha256sum | cut -c1-16)
  if ! up_to_date debian:$SUITE-slim "$hash"; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (tools/deps.sh)"
    log "debian:$SUITE-slim: debootstrap --variant=minbase $SUITE (a minute or two)"
    mkdir -p "$CACHE/tmp" "$CACHE/debs"
    for work in "$CACHE"/tmp/rootfs.*; do   # what a killed run left
      [ -d "$work" ] || continue
      unmount_under "$work"
      rm -rf --one-file-system "$work"
    done
    work=$(mktemp -d "$CACHE/tmp/rootfs.XXXXXX")
    # shellcheck disable=SC2064 # the path is fixed now
    trap "unmount_under '$work'; rm -rf --one-file-system '$work'" EXIT
    base_rootfs "$work" || die "debootstrap failed"
    tar --numeric-owner --xattrs -C "$work/root" -cf - . |
      "$DOCKER" import \
        --change "LABEL $LABEL=tools/docker/images.sh" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        - debian:$SUITE-slim >/dev/null
    stamp debian:$SUITE-slim "$hash"
    unmount_under "$work"
    rm -rf --one-file-system "$work"
    trap - EXIT
    log "debian:$SUITE-slim: $(human "$("$DOCKER" image inspect -f '{{.Size}}' debian:$SUITE-slim)")"
  fi
  # The build stage's debian:$SUITE: the same image, unless a real one is here.
  if [ -z "$(image_id debian:$SUITE)" ] || [ -n "$(image_label debian:$SUITE)" ]; then
    "$DOCKER" tag debian:$SUITE-slim debian:$SUITE
  fi
}

# ------------------------------------------------------------------ stand-ins

human() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# compose_images - "service image" for every service of docker-compose.yml.
compose_images() {
  (cd "$ROOT" && docker-compose -f docker-compose.yml config) |
    python3 -c 'import sys, yaml
for name, svc in yaml.safe_load(sys.stdin)["services"].items():
    print(name, svc.get("image", ""))'
}

# logged NAME CMD... - runs CMD with its output in a file; on failure prints
# the end of it, naming NAME, and returns 1.
logged() {
  local name=$1 out rc=0
  shift
  out=$(mktemp)
  "$@" > "$out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { tail -40 "$out" >&2; log "$name: the build failed"; }
  rm -f "$out"
  return "$rc"
}

# standin SERVICE IMAGE HASH - builds one stand-in and stamps it.
standin() {
  log "$2: a stand-in built from tools/docker/$1"
  logged "$2" "$DOCKER" build --network host --label "$LABEL=tools/docker/$1" -t "$2" "$HERE/$1" &&
    stamp "$2" "$3"
}

# standins - starts the stand-in builds that are needed, in the background,
# and adds their pids to the array `jobs` (the builds mostly wait on the
# mirror, so they run side by side).
standins() {
  local svc image dir hash base_id
  base_id=$(image_id debian:$SUITE-slim)
  [ -n "$base_id" ] || die "debian:$SUITE-slim is missing: build it first (images.sh base)"
  while read -r svc image; do
    dir=$HERE/$svc
    [ -f "$dir/Dockerfile" ] || continue   # the eskit services: built below
    hash=$( { echo "$image $base_id"; (cd "$dir" && find . -type f -print0 | sort -z |
              xargs -0 sha256sum); } | sha256sum | cut -c1-16)
    if up_to_date "$image" "$hash"; then
      continue
    fi
    standin "$svc" "$image" "$hash" &
    jobs+=($!)
  done < <(compose_images)
}

# wait_jobs - waits for every pid in `jobs`; fails if any failed.
wait_jobs() {
  local pid failed=0
  for pid in "${jobs[@]}"; do
    wait "$pid" || failed=1
  done
  jobs=()
  [ "$failed" -eq 0 ] || die "a build failed (above)"
}

# ------------------------------------------------------------------ eskit

eskit() {
  log "eskit:latest: docker build (the Dockerfile's layer cache makes this quick when nothing changed)"
  # The build stage gets a tag of its own, so that pruning (below) keeps it
  # and the next build finds its packages installed.
  logged eskit:latest "$DOCKER" build --network host --target build -t eskit-build-stage:latest \
    -f "$ROOT/Dockerfile" "$ROOT" &&
    logged eskit:latest "$DOCKER" build --network host -t eskit:latest -f "$ROOT/Dockerfile" "$ROOT" ||
    return 1
  log "eskit:latest: $(human "$(size)")"
}

# On the private engine, images that lost their tag to a rebuild go, so that
# the cache directory does not grow with every change. (Another engine's
# images are its owner's business.)
prune() {
  if [ "$DOCKER_HOST" = "unix://$CACHE/run/docker.sock" ]; then
    "$DOCKER" image prune -f >/dev/null
  fi
}

size() { "$DOCKER" image inspect -f '{{.Size}}' eskit:latest; }

case ${1:-all} in
  base) base; prune ;;
  standins) standins; wait_jobs; prune ;;
  eskit) eskit || die "docker build of eskit:latest failed"; prune ;;
  all)
    base
    standins
    eskit & jobs+=($!)
    wait_jobs
    prune
    ;;
  size) size ;;
  *) echo "usage: $0 [base|standins|eskit|all|size]" >&2; exit 2 ;;
esac
