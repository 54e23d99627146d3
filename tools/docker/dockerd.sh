#!/usr/bin/env bash
# dockerd.sh start|stop|status|env - a private Docker engine for the deploy
# tests and `make deploy`, next to whatever engine the machine may run.
#
# Debian's docker.io (/usr/sbin/dockerd, /usr/bin/docker, /usr/bin/containerd),
# with everything of its own under one cache directory, $ESKIT_DOCKER_CACHE
# (default /var/cache/eskit-docker), kept between runs so that the images and
# the build cache are there next time:
#
#   data/                 dockerd --data-root (images, layers, volumes) and
#                         containerd's root
#   exec/                 dockerd --exec-root and containerd's state
#   run/docker.sock       the engine's only socket (-H unix://...)
#   run/dockerd.pid       dockerd --pidfile; run/containerd.pid
#   daemon.json           an empty --config-file: /etc/docker/daemon.json
#                         is not read
#   containerd.toml       containerd's config: its own socket and paths
#   log/                  both daemons' logs
#
# It never talks to, stops or reuses an engine it did not start: it runs its
# own containerd (dockerd would otherwise use /run/containerd/containerd.sock
# when a system containerd runs), and an engine on its socket whose pidfile
# names another program is an error. The default bridge (docker0) is left
# alone (--bridge=none): builds run with --network host, and Compose makes
# its own networks, so a system engine's docker0 is never touched.
#
# The host's firewall and forwarding are left as they are too
# (--iptables=false --ip-forward=false): containers reach each other over
# their Compose bridge, and the host reaches them through docker-proxy on
# the published loopback ports, neither of which needs a rule or forwarding.
# Only where the FORWARD policy is not ACCEPT (another engine, a firewall),
# which would drop the bridge's traffic, does dockerd manage its own rules
# (--iptables=true); ESKIT_DOCKERD_IPTABLES=1 or 0 decides instead.
#
#   start   starts both daemons unless ours already run; prints "started" or
#           "running" (already up: the caller did not start it)
#   stop    stops ours (SIGTERM, then SIGKILL after 20 s), and unmounts what
#           they left mounted under the cache directory; no-op when down
#   status  exit 0 when ours answers, 1 otherwise
#   env     prints DOCKER_HOST=... for the callers' docker/docker-compose
#
# Needs root (as dockerd does). The client to use with it is /usr/bin/docker
# (the engine's own version; another docker on the PATH may speak a newer API).
set -euo pipefail

CACHE=${ESKIT_DOCKER_CACHE:-/var/cache/eskit-docker}
DOCKERD=/usr/sbin/dockerd
CONTAINERD=/usr/bin/containerd
DOCKER=/usr/bin/docker
SOCK=$CACHE/run/docker.sock
PIDFILE=$CACHE/run/dockerd.pid
CPIDFILE=$CACHE/run/containerd.pid
CSOCK=$CACHE/exec/containerd/containerd.sock
START_TIMEOUT=${ESKIT_DOCKERD_START_TIMEOUT:-60}

die() { echo "dockerd.sh: $*" >&2; exit 1; }

# pid_of PIDFILE BINARY - the pid in PIDFILE when that process runs BINARY
# with our cache directory on its command line; nothing otherwise.
pid_of() {
  local pid
  [ -f "$1" ] || return 0
  pid=$(tr -dc '0-9' < "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$2 " &&
     tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$CACHE/"; then
    echo "$pid"
  fi
}

answers() { DOCKER_HOST=unix://$SOCK "$DOCKER" version >/dev/null 2>&1; }

# wait_gone PID SECONDS - true once PID has exited.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -d "/proc/$1" ] || return 0
    sleep 0.1
  done
  return 1
}

# stop_pid PID NAME - SIGTERM, then SIGKILL after 20 s.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  if ! wait_gone "$1" 20; then
    echo "dockerd.sh: $2 ($1) did not stop in 20 s; killing it" >&2
    kill -KILL "$1" 2>/dev/null || true
    wait_gone "$1" 5 || true
  fi
}

check_tools() {
  [ "$(id -u)" -eq 0 ] || die "needs root (dockerd does)"
  local t
  for t in "$DOCKERD" "$CONTAINERD" "$DOCKER"; do
    [ -x "$t" ] || die "$t is missing: install Debian's docker.io (tools/deps.sh)"
  done
}

write_configs() {
  mkdir -p "$CACHE/data" "$CACHE/exec/containerd" "$CACHE/run" "$CACHE/log"
  chmod 0711 "$CACHE"
  [ -f "$CACHE/daemon.json" ] || echo '{}' > "$CACHE/daemon.json"
  local f
  for f in "$CACHE"/log/*.log; do   # logs are for the last runs only
    [ ! -f "$f" ] || [ "$(stat -c %s "$f")" -lt 10000000 ] || : > "$f"
  done
  cat > "$CACHE/containerd.toml" <<EOF
# Written by tools/docker/dockerd.sh: the private engine's containerd.
version = 2
root = "$CACHE/data/containerd"
state = "$CACHE/exec/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CSOCK"

[ttrpc]
  address = "$CSOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CACHE/data/containerd/opt"
EOF
}

# The --iptables value: see the top of this file.
iptables_flag() {
  case ${ESKIT_DOCKERD_IPTABLES:-auto} in
    1) echo true; return ;;
    0) echo false; return ;;
  esac
  if command -v iptables >/dev/null &&
     ! iptables -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD ACCEPT'; then
    echo "dockerd.sh: the FORWARD policy is not ACCEPT; dockerd manages its own rules" >&2
    echo true
  else
    echo false
  fi
}

start() {
  check_tools
  local dpid cpid i iptables
  dpid=$(pid_of "$PIDFILE" "$DOCKERD")
  if [ -n "$dpid" ] && answers; then
    echo "running"
    return 0
  fi
  if [ -S "$SOCK" ] && [ -z "$dpid" ] && answers; then
    die "an engine answers on $SOCK that $PIDFILE does not name; not touching it"
  fi
  [ -z "$dpid" ] || stop_pid "$dpid" dockerd   # ours, but not answering
  write_configs
  rm -f "$SOCK"

  cpid=$(pid_of "$CPIDFILE" "$CONTAINERD")
  if [ -z "$cpid" ]; then
    rm -f "$CSOCK" "$CSOCK.ttrpc"
    setsid "$CONTAINERD" --config "$CACHE/containerd.toml" --log-level warn \
      >>"$CACHE/log/containerd.log" 2>&1 < /dev/null &
    cpid=$!
    echo "$cpid" > "$CPIDFILE"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
      [ -S "$CSOCK" ] && break
      [ -d "/proc/$cpid" ] || die "containerd exited; see $CACHE/log/containerd.log"
      sleep 0.1
    done
    [ -S "$CSOCK" ] || die "containerd did not start in ${START_TIMEOUT}s; see $CACHE/log/containerd.log"
  fi

  iptables=$(iptables_flag)
  setsid "$DOCKERD" \
    --data-root "$CACHE/data" \
    --exec-root "$CACHE/exec" \
    --pidfile "$PIDFILE" \
    -H "unix://$SOCK" \
    --containerd "$CSOCK" \
    --config-file "$CACHE/daemon.json" \
    --bridge none \
    --iptables="$iptables" \
    --ip-forward=false \
    --log-level warn \
    >>"$CACHE/log/dockerd.log" 2>&1 < /dev/null &
  dpid=$!
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    answers && break
    [ -d "/proc/$dpid" ] || die "dockerd exited; the end of $CACHE/log/dockerd.log: $(tail -5 "$CACHE/log/dockerd.log")"
    sleep 0.1
  done
  answers || die "dockerd did not answer in ${START_TIMEOUT}s; see $CACHE/log/dockerd.log"
  echo "started"
}

stop() {
  local dpid cpid
  dpid=$(pid_of "$PIDFILE" "$DOCKERD")
  cpid=$(pid_of "$CPIDFILE" "$CONTAINERD")
  [ -z "$dpid" ] || stop_pid "$dpid" dockerd
  [ -z "$cpid" ] || stop_pid "$cpid" containerd
  rm -f "$CPIDFILE"
  # dockerd leaves its data root bound on itself and the host's network
  # namespace bound in exec/netns/default: unmount them, deepest first
  # (unless an engine we could not name still answers on our socket).
  if answers; then
    die "an engine still answers on $SOCK that $PIDFILE does not name; not unmounting"
  fi
  awk -v d="$CACHE/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) [ -n "$(pid_of "$PIDFILE" "$DOCKERD")" ] && answers ;;
  env) echo "DOCKER_HOST=unix://$SOCK" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
