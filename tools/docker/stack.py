#!/usr/bin/env python3
"""stack.py - the Compose stack of docker-compose.yml on a Docker engine.

    tools/docker/stack.py up      `make deploy`: build, start, wait, say where
    tools/docker/stack.py down    `make deploy-down`: stop and remove it
    tools/docker/stack.py ps      what runs

`up` picks an engine: the one DOCKER_HOST names; else a system engine that
answers on /var/run/docker.sock; else the private engine of
tools/docker/dockerd.sh, which it starts (and `down` stops). It refuses to
start when a port the Compose file publishes is taken, builds the images
(tools/docker/images.sh: the project's image, and stand-ins for third-party
images that are not there), runs `docker-compose up -d`, waits until every
container is healthy, and prints where everything listens. The project name
is `eskit` (-p to change it).

The deploy test (tests/integration/deploy_stack.py) drives the same class,
Stack, on the private engine. Only the standard library and PyYAML (which
tools/deps.sh installs for the tests) are used.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tools", "docker")
DOCKERD_SH = os.path.join(HERE, "dockerd.sh")
IMAGES_SH = os.path.join(HERE, "images.sh")
# The client that matches Debian's engine; another docker on the PATH (a newer
# client) is used only when Debian's is not installed.
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
COMPOSE = "docker-compose"
SYSTEM_SOCKET = "/var/run/docker.sock"
STANDIN_LABEL = "org.eskit.made-by"
FAIL_STREAK = 5     # health checks failed in a row that fail `up` at once

_t0 = time.monotonic()


def say(msg, prefix="deploy"):
    """One line of progress on stdout, with the seconds since the start. A
    closed stdout (a reader that went away) is no reason to stop cleaning up."""
    try:
        print(f"{prefix}: [{time.monotonic() - _t0:6.1f}s] {msg}", flush=True)
    except (OSError, ValueError):
        pass


class StackError(Exception):
    """A step failed; the message says which and why."""


def run(cmd, env=None, timeout=120, check=True, capture=True, split=False):
    """Runs cmd; returns the CompletedProcess, its stdout holding stderr too
    unless split. check: a non-zero exit is a StackError carrying the end of
    the output. Interrupted (a signal handler that raises, a time-out), the
    command gets SIGTERM and 10 s to clean up before SIGKILL."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=(subprocess.PIPE if split else subprocess.STDOUT)
                            if capture else None,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as e:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if isinstance(e, subprocess.TimeoutExpired):
            raise StackError(f"{' '.join(cmd[:3])}... did not finish in {timeout}s") from None
        raise
    r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and r.returncode != 0:
        tail = "\n".join(((r.stdout or "") + (r.stderr or "")).strip().splitlines()[-30:])
        raise StackError(f"{' '.join(cmd[:4])}... exited {r.returncode}:\n{tail}")
    return r


# ---------------------------------------------------------------- engines

class Engine:
    """A Docker engine: where it listens, and whether it is our private one."""

    def __init__(self, host, private):
        self.host = host
        self.private = private
        self.started = False    # by us, in this process
        self.env = dict(os.environ, DOCKER_HOST=host, ESKIT_DOCKER=DOCKER)

    def docker(self, *args, **kw):
        return run([DOCKER, *args], env=self.env, **kw)

    def answers(self):
        return self.docker("version", check=False, timeout=20).returncode == 0

    def start(self):
        """Starts the private engine unless it runs; notes whether we did."""
        if not self.private:
            return
        r = run([DOCKERD_SH, "start"], timeout=120)
        self.started = r.stdout.strip().endswith("started")
        say(f"private Docker engine {'started' if self.started else 'already running'}"
            f" ({self.host})")

    def stop(self):
        if self.private:
            run([DOCKERD_SH, "stop"], timeout=120, check=False)


def private_engine():
    r = run([DOCKERD_SH, "env"])
    host = r.stdout.strip().split("=", 1)[1]
    return Engine(host, private=True)


def pick_engine():
    """DOCKER_HOST, else an answering system engine, else the private one."""
    private = private_engine()
    host = os.environ.get("DOCKER_HOST")
    if host:
        return private if host == private.host else Engine(host, private=False)
    system = Engine("unix://" + SYSTEM_SOCKET, private=False)
    if os.path.exists(SYSTEM_SOCKET) and system.answers():
        return system
    return private


# ---------------------------------------------------------------- the stack

def _port_spec(p):
    """(host ip, published port, target port) of one Compose `ports` entry;
    None when nothing is published on a fixed host port."""
    if isinstance(p, dict):
        if not p.get("published"):
            return None
        return p.get("host_ip") or "0.0.0.0", int(p["published"]), int(p["target"])
    parts = str(p).split("/")[0].split(":")
    if len(parts) == 1:
        return None
    if len(parts) == 2:
        return "0.0.0.0", int(parts[0]), int(parts[1])
    return parts[0] or "0.0.0.0", int(parts[1]), int(parts[2])


def port_taken(ip, port):
    """True when something listens on ip:port: a bind that fails, as the
    engine's own would (SO_REUSEADDR: connections of an earlier run still in
    TIME_WAIT do not count)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((ip, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def who_listens(port):
    """What `ss` says listens on a port, or ''."""
    try:
        r = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return " ".join(r.stdout.split())


class Stack:
    """docker-compose.yml (plus override files) as one Compose project."""

    def __init__(self, engine, project="eskit", files=()):
        self.engine = engine
        self.project = project
        self.files = ["docker-compose.yml", *files]
        self._config = None

    def compose(self, *args, **kw):
        cmd = [COMPOSE, "-p", self.project]
        for f in self.files:
            cmd += ["-f", f]
        return run([*cmd, *args], env=self.engine.env, **kw)

    def config(self):
        """The resolved Compose file (anchors, merges, overrides)."""
        if self._config is None:
            self._config = yaml.safe_load(self.compose("config", timeout=60, split=True).stdout)
        return self._config

    def published(self):
        """[(service, host ip, published port, target port)]."""
        out = []
        for name, svc in self.config()["services"].items():
            for p in svc.get("ports", []):
                spec = _port_spec(p)
                if spec:
                    out.append((name, *spec))
        return out

    def url(self, service, target):
        """http://HOST:PORT where the host reaches a service's target port."""
        for name, ip, port, tgt in self.published():
            if name == service and tgt == target:
                return f"http://{'127.0.0.1' if ip == '0.0.0.0' else ip}:{port}"
        raise StackError(f"{service}: port {target} is not published")

    def refuse_taken_ports(self):
        """A StackError naming every published port that something holds."""
        taken = []
        for name, ip, port, _ in self.published():
            if port_taken(ip, port):
                who = who_listens(port)
                taken.append(f"  {ip}:{port} ({name}) is taken" + (f": {who}" if who else ""))
        if taken:
            raise StackError("ports that docker-compose.yml publishes are in use; stop "
                             "what holds them (or `make deploy-down` for a stack of "
                             "`make deploy`):\n" + "\n".join(taken))

    def build_images(self):
        """tools/docker/images.sh all: base, stand-ins, the project's image."""
        t = time.monotonic()
        run([IMAGES_SH, "all"], env=self.engine.env, timeout=1800, capture=False)
        size = int(self.engine.docker("image", "inspect", "-f", "{{.Size}}",
                                      "eskit:latest").stdout.strip())
        say(f"images ready in {time.monotonic() - t:.1f}s; eskit:latest is {size / 1e6:.1f} MB")
        return size

    # --- containers --------------------------------------------------------------
    def container_ids(self, all_=True):
        r = self.engine.docker("ps", *(["-a"] if all_ else []), "-q", "--filter",
                               f"label=com.docker.compose.project={self.project}")
        return r.stdout.split()

    def inspect(self, ids=None):
        """{service: docker inspect of its container}."""
        ids = self.container_ids() if ids is None else ids
        if not ids:
            return {}
        data = json.loads(self.engine.docker("inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in data}

    def logs(self, service, tail=40):
        r = self.compose("logs", "--no-color", f"--tail={tail}", service, check=False,
                         timeout=60)
        return r.stdout.strip()

    def _problems(self, containers):
        """{service: what is wrong} of containers that died, restart, are
        unhealthy, or failed their health check FAIL_STREAK times in a row
        (a service whose dependencies are all healthy that fails that long
        is broken: Compose would only call it unhealthy after all its
        retries)."""
        bad = {}
        for name, c in containers.items():
            st = c["State"]
            health = st.get("Health") or {}
            last = (health.get("Log") or [{}])[-1].get("Output", "").strip()
            if st.get("Restarting") or c.get("RestartCount", 0) > 0 \
                    or st.get("Status") in ("exited", "dead"):
                bad[name] = f"exited {st.get('ExitCode')} ({c.get('RestartCount', 0)} restarts)"
            elif health.get("Status") == "unhealthy":
                bad[name] = f"unhealthy: {last[:300]}"
            elif health.get("FailingStreak", 0) >= FAIL_STREAK:
                bad[name] = (f"its health check failed {health['FailingStreak']} times in a "
                             f"row: {last[:300]}")
        return bad

    def _fail_with_logs(self, what, problems):
        details = []
        for name, why in problems.items():
            details.append(f"--- {name}: {why}\n{self.logs(name)}")
        raise StackError(what + "\n" + "\n".join(details))

    def up(self, timeout=300):
        """`docker-compose up -d`, watching the containers meanwhile: one that
        dies, restarts or turns unhealthy fails at once, with its log; then
        waits until every service's container is healthy (running, for one
        without a health check)."""
        expected = set(self.config()["services"])
        deadline = time.monotonic() + timeout
        cmd = [COMPOSE, "-p", self.project]
        for f in self.files:
            cmd += ["-f", f]
        cmd += ["up", "-d", "--no-build"]
        say("docker-compose up -d")
        out = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.engine.env, text=True, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            last = ""
            while True:
                containers = self.inspect()
                bad = self._problems(containers)
                if bad:
                    self._fail_with_logs(f"containers failed while starting: {', '.join(bad)}", bad)
                state = {n: ((c["State"].get("Health") or {}).get("Status")
                             or c["State"]["Status"]) for n, c in containers.items()}
                done = proc.poll() is not None
                if done and proc.returncode != 0:
                    out.seek(0)
                    raise StackError("docker-compose up failed:\n" + out.read()[-3000:])
                ready = {n for n, s in state.items() if s == "healthy" or
                         (s == "running" and containers[n]["State"].get("Health") is None)}
                summary = ", ".join(f"{n} {s}" for n, s in sorted(state.items()))
                if summary != last:
                    say(f"containers: {summary or 'none yet'}")
                    last = summary
                if done and ready >= expected:
                    return containers
                if time.monotonic() > deadline:
                    slow = {n: state.get(n, "not created") for n in sorted(expected - ready)}
                    self._fail_with_logs(f"not healthy after {timeout}s: {', '.join(slow)}", slow)
                time.sleep(1)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            out.close()

    def down(self):
        """`docker-compose down -v`: containers, networks and volumes."""
        say("docker-compose down -v")
        self.compose("down", "-v", "--remove-orphans", "-t", "15", timeout=180, check=False)

    def leftovers(self):
        """What of the project is still on the engine (after down: nothing)."""
        left = []
        label = f"label=com.docker.compose.project={self.project}"
        for kind in ("container", "volume", "network"):
            args = [kind, "ls", "-q", "--filter", label] if kind != "container" else \
                ["ps", "-aq", "--filter", label]
            r = self.engine.docker(*args, check=False)
            left += [f"{kind} {x}" for x in r.stdout.split()]
        return left

    def listeners(self):
        """Lines saying where each published service listens, and which
        images are stand-ins (tools/docker/images.sh)."""
        titles = {"event-store": "event store", "crud-store": "CRUD store",
                  "consumer-store": "consumer store", "metrics-consumer": "metrics consumer",
                  "prometheus": "Prometheus", "grafana": "Grafana"}
        lines = []
        for name, ip, port, _ in sorted(self.published(), key=lambda x: x[2]):
            image = self.config()["services"][name].get("image", "")
            r = self.engine.docker("image", "inspect", "-f",
                                   f'{{{{index .Config.Labels "{STANDIN_LABEL}"}}}}', image,
                                   check=False)
            made = r.stdout.strip() if r.returncode == 0 and image != "eskit:latest" else ""
            note = f"   a stand-in for {image}, from {made}" if made else ""
            if made and name == "grafana":
                note += " (a stub: it only answers /api/health)"
            host = "127.0.0.1" if ip == "0.0.0.0" else ip
            lines.append(f"  {titles.get(name, name):17} http://{host}:{port}{note}")
        return lines


# ---------------------------------------------------------------- make deploy

def cmd_up(args):
    engine = pick_engine()
    stack = Stack(engine, args.project, args.file)
    if not stack_running(engine, stack):
        stack.refuse_taken_ports()
    engine.start()
    if not engine.answers():
        raise StackError(f"no Docker engine answers on {engine.host}")
    stack.build_images()
    try:
        stack.up()
    except StackError as e:
        raise StackError(f"{e}\nThe containers are left as they are; make deploy-down "
                         "removes them.") from None
    print(f"\neskit is up (Compose project {args.project}, engine {engine.host}):")
    print("\n".join(stack.listeners()))
    print(f"\nBy hand: DOCKER_HOST={engine.host} docker-compose -p {args.project} ps (or logs)")
    print("make deploy-down stops it (and the private engine when nothing else runs on it).")


def stack_running(engine, stack):
    """True when the project already has containers on an answering engine
    (a second `make deploy`: compose updates it in place)."""
    return engine.answers() and bool(stack.container_ids(all_=False))


def cmd_down(args):
    engine = pick_engine()
    if not engine.answers():
        say("no Docker engine answers: nothing to stop")
        return
    stack = Stack(engine, args.project, args.file)
    stack.compose("down", "--remove-orphans", *(["-v"] if args.volumes else []),
                  timeout=180, capture=False)
    if engine.private and not engine.docker("ps", "-q").stdout.split():
        engine.stop()
        say("private Docker engine stopped")


def cmd_ps(args):
    engine = pick_engine()
    Stack(engine, args.project, args.file).compose("ps", capture=False, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["up", "down", "ps"])
    ap.add_argument("-p", "--project", default="eskit")
    ap.add_argument("-f", "--file", action="append", default=[],
                    help="a Compose override file, after docker-compose.yml")
    ap.add_argument("-v", "--volumes", action="store_true", help="down: remove the volumes too")
    args = ap.parse_args()
    try:
        {"up": cmd_up, "down": cmd_down, "ps": cmd_ps}[args.command](args)
    except StackError as e:
        print(f"deploy: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
