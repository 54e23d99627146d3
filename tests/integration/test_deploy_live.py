"""The deployment run for real (SPEC §7): deploy_stack.py builds the images,
brings docker-compose.yml up on a private Docker engine, checks it (hardening,
a tour through the published ports, Prometheus) and removes it.

- the stack passes, and the log shows how long it took and the image size;
- a deploy broken by an override of tests/fixtures/compose-broken/ fails, with
  the message its `# expect:` line names, and leaves nothing behind;
- a published port that is taken makes it refuse to start, before anything
  runs;
- SIGTERM while the stack comes up stops it and leaves nothing behind.

Needs root (dockerd) and Debian's docker.io and debootstrap (tools/deps.sh).
The engine's images and build cache stay in $ESKIT_DOCKER_CACHE (default
/var/cache/eskit-docker), so only the first run on a machine builds the base
images (a few minutes); later ones take about a minute each.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNER = HERE / "deploy_stack.py"
BROKEN = ROOT / "tests" / "fixtures" / "compose-broken"
TIMEOUT = 900   # a cold run: debootstrap, stand-ins and the image from nothing
PORTS = [8080, 8081, 8082, 8083, 9090, 3000]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the private dockerd needs root")


def deploy(*args, timeout=TIMEOUT):
    """Runs deploy_stack.py; returns (exit status, its output)."""
    r = subprocess.run([sys.executable, str(RUNNER), *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def engine_running():
    return subprocess.run([str(ROOT / "tools" / "docker" / "dockerd.sh"), "status"],
                          capture_output=True).returncode == 0


def assert_left_nothing(out, engine_was_running):
    assert "nothing of eskit-deploy-test is left" in out, out[-4000:]
    busy = [p for p in PORTS if _taken(p)]
    assert not busy, f"ports still taken after the run: {busy}"
    if not engine_was_running:
        assert not engine_running(), "the private engine was left running"


def _taken(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def test_deploy_refuses_a_taken_port():
    port = 8083
    if _taken(port):
        pytest.skip(f"{port} is taken by something else already")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        t = time.monotonic()
        rc, out = deploy(timeout=120)
    finally:
        holder.close()
    assert rc == 2, out[-3000:]
    assert f"127.0.0.1:{port} (metrics-consumer) is taken" in out, out[-3000:]
    assert "docker-compose up" not in out, "it started the stack anyway"
    assert time.monotonic() - t < 60


def test_deploy_for_real(capsys):
    """The whole deploy test; its summary goes to the test log."""
    was_running = engine_running()
    rc, out = deploy()
    assert rc == 0, out[-8000:]
    summary = [ln for ln in out.splitlines()
               if re.match(r"deploy: \[.*\] (images ready|every container|hardening|tour|"
                           r"Prometheus|Grafana|down:|deploy test)", ln)]
    with capsys.disabled():
        print("\n" + "\n".join(summary))
    assert_left_nothing(out, was_running)
    m = re.search(r"deploy test passed in ([\d.]+)s \(eskit:latest ([\d.]+) MB\)", out)
    assert m, out[-2000:]
    assert float(m.group(2)) < 100, f"the image is {m.group(2)} MB"


def _broken():
    return sorted(p.name for p in BROKEN.glob("*.yml"))


@pytest.mark.parametrize("fixture", _broken())
def test_broken_deploy_is_caught(fixture):
    path = BROKEN / fixture
    expected = re.findall(r"^# expect: (.+)$", path.read_text(), re.M)
    assert expected, f"{fixture}: no '# expect:' line"
    was_running = engine_running()
    rc, out = deploy("-f", str(path))
    assert rc == 1, f"{fixture}: the deploy test did not fail:\n{out[-4000:]}"
    for e in expected:
        assert e in out, f"{fixture}: expected {e!r} in:\n{out[-4000:]}"
    assert_left_nothing(out, was_running)


def test_sigterm_cleans_up():
    """SIGTERM once the containers are being created: down -v, engine stopped."""
    was_running = engine_running()
    p = subprocess.Popen([sys.executable, str(RUNNER)], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    try:
        deadline = time.monotonic() + TIMEOUT
        for line in p.stdout:
            lines.append(line)
            if "containers: " in line and "postgres" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            pytest.fail("the deploy test ended before the stack came up:\n" + "".join(lines))
        p.send_signal(signal.SIGTERM)
        rest, _ = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = "".join(lines) + rest
    assert p.returncode == 128 + signal.SIGTERM, out[-4000:]
    assert "stopped by signal 15: cleaning up" in out, out[-4000:]
    assert_left_nothing(out, was_running)
