#!/usr/bin/env python3
"""deploy_stack.py - the deploy test: docker-compose.yml run for real (SPEC §7).

    python3 tests/integration/deploy_stack.py [-f OVERRIDE.yml]...

On a private Docker engine (tools/docker/dockerd.sh, its state kept in
$ESKIT_DOCKER_CACHE, default /var/cache/eskit-docker): builds the images
(tools/docker/images.sh: a debootstrapped Debian base, stand-ins for the
third-party images, the project's image), brings the Compose stack up and
waits until every container is healthy, then checks

  - the hardening the Compose file asks for is in force in the running
    containers: read-only root file system (a write fails), every capability
    dropped (CapEff 0), no new privileges (NoNewPrivs 1), a writable /tmp, not
    root;
  - a tour through the published ports: an append, a stream read, a log read
    with a selector, a 409 on a taken version; a CRUD type, a document
    created, read, patched, its history and an old version; a consumer offset
    set and a stale compare-and-set refused with 409; the metrics consumer's
    counters of those events and the offset it stored in the consumer store;
  - Prometheus: `up` is 1 for every target of deploy/prometheus/prometheus.yml,
    `eskit_events_total` has been scraped, and every metric the Grafana
    dashboards query has series in it; the Grafana stand-in answers;

and always ends with `docker-compose down -v` (on a failure too, and on
SIGTERM, SIGINT or SIGHUP), checks that nothing of the project is left,
and stops the engine if it started it. It prints how long it took and how
big the image is.

Exit status: 0 passed; 1 a check failed; 2 refused to start (a published
port is taken, not root, tools missing); 128 + N stopped by signal N.
tests/integration/test_deploy_live.py runs it, and runs it on a broken
override (tests/fixtures/compose-broken/) that must fail.
"""
import argparse
import fcntl
import os
import re
import signal
import sys
import time
import traceback
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tools" / "docker"))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402

import stack as stk  # noqa: E402
from eskit import Client  # noqa: E402
from promcheck import Metrics, fetch_metrics  # noqa: E402
from stack import StackError, say  # noqa: E402

PROJECT = "eskit-deploy-test"
CACHE = Path(os.environ.get("ESKIT_DOCKER_CACHE", "/var/cache/eskit-docker"))
IMAGE_TARGET = 100_000_000  # bytes: the image stays under 100 MB
ESKIT = {"event-store": 8080, "crud-store": 8081, "consumer-store": 8082, "metrics-consumer": 8083}


class Refused(Exception):
    """The test cannot start here; nothing was started."""


class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum, frame):
    raise Interrupted(signum)


def expect(cond, msg):
    if not cond:
        raise StackError(msg)


def wait_for(what, fn, timeout, interval=0.5):
    """Calls fn until it returns something true; a StackError naming what
    (and fn's last answer) after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, ValueError, KeyError) as e:   # not answering yet
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise StackError(f"{what} (waited {timeout}s); last: {str(last)[:1500]}")
        time.sleep(interval)


# ---------------------------------------------------------------- before

def preflight():
    if os.geteuid() != 0:
        raise Refused("needs root (the private dockerd does)")
    for tool in ("/usr/sbin/dockerd", "/usr/bin/docker", "/usr/bin/containerd"):
        if not os.access(tool, os.X_OK):
            raise Refused(f"{tool} is missing: run tools/deps.sh (Debian's docker.io)")
    for tool in ("debootstrap", "docker-compose"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin"]):
            raise Refused(f"{tool} is missing: run tools/deps.sh")


def take_lock(timeout=900):
    """One deploy test at a time on this machine (they publish the same
    ports and share the engine): an flock on $CACHE/lock, held until exit."""
    CACHE.mkdir(parents=True, exist_ok=True)
    f = open(CACHE / "lock", "w")
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if not waited:
                say(f"another deploy test holds {CACHE / 'lock'}; waiting for it")
                waited = True
            if time.monotonic() > deadline:
                raise Refused(f"another deploy test held {CACHE / 'lock'} for {timeout}s")
            time.sleep(2)


# ---------------------------------------------------------------- hardening

def check_hardening(stack, containers):
    """What the Compose file asks of each container, seen in docker inspect
    and from inside the running container."""
    services = stack.config()["services"]
    for name in ESKIT:
        svc = services[name]
        asked = {"read_only": bool(svc.get("read_only")),
                 "cap_drop ALL": "ALL" in (svc.get("cap_drop") or []),
                 "no-new-privileges": "no-new-privileges:true" in (svc.get("security_opt") or [])}
        missing = [k for k, v in asked.items() if not v]
        expect(not missing, f"docker-compose.yml no longer asks for {', '.join(missing)} on {name}")
    checked = []
    for name, svc in services.items():
        c = containers[name]
        hc = c["HostConfig"]
        cid = c["Id"]
        status = stack.engine.docker("exec", cid, "cat", "/proc/1/status").stdout
        field = dict(re.findall(r"^(\w+):\s*(.*)$", status, re.M))
        if svc.get("read_only"):
            expect(hc.get("ReadonlyRootfs") is True, f"{name}: ReadonlyRootfs is not set")
            r = stack.engine.docker("exec", cid, "sh", "-c", "echo x > /eskit-probe", check=False)
            expect(r.returncode != 0 and "Read-only" in r.stdout,
                   f"{name}: the root file system took a write: {r.stdout.strip()}")
        if "ALL" in (svc.get("cap_drop") or []):
            expect("ALL" in (hc.get("CapDrop") or []), f"{name}: CapDrop is {hc.get('CapDrop')}")
            for cap in ("CapEff", "CapPrm", "CapBnd"):
                expect(int(field.get(cap, "1"), 16) == 0,
                       f"{name}: {cap} of its process is {field.get(cap)}, not 0")
        if "no-new-privileges:true" in (svc.get("security_opt") or []):
            expect("no-new-privileges:true" in (hc.get("SecurityOpt") or []),
                   f"{name}: SecurityOpt is {hc.get('SecurityOpt')}")
            expect(field.get("NoNewPrivs") == "1", f"{name}: NoNewPrivs is {field.get('NoNewPrivs')}")
        for path in svc.get("tmpfs") or []:
            expect(path in (hc.get("Tmpfs") or {}), f"{name}: no tmpfs on {path}")
            r = stack.engine.docker("exec", cid, "sh", "-c", f"echo x > {path}/eskit-probe",
                                    check=False)
            expect(r.returncode == 0, f"{name}: {path} is not writable: {r.stdout.strip()}")
        if name in ESKIT:
            uid = field.get("Uid", "0").split()[0]
            expect(uid != "0", f"{name}: its process runs as root")
            checked.append(name)
    say(f"hardening in force in {', '.join(checked)}: read-only root (a write failed), "
        "capabilities 0, NoNewPrivs 1, /tmp writable, uid 10001")


# ---------------------------------------------------------------- the tour

def _ok(r, status, what):
    expect(r.status == status, f"{what}: expected {status}, got {r.status} {r.body[:300]}")
    return r.json


def tour(stack):
    """The published ports, one call after another; returns the highest log
    id written (what the metrics consumer must reach)."""
    es = Client(stack.url("event-store", 8080))
    crud = Client(stack.url("crud-store", 8081))
    cs = Client(stack.url("consumer-store", 8082))
    mc_url = stack.url("metrics-consumer", 8083)
    run = uuid.uuid4().hex[:8]
    user = f"tour-user-{run}"

    # event store: append, a taken version, a second event, read, log with a selector
    j = _ok(es.post("/v1/events", {"originator": {"id": user, "version": 1},
                                   "event_type": "TourUser.Created",
                                   "payload": {"email": "ada@example.com"}}), 201, "append")
    first = j["log_id"]
    j = _ok(es.post("/v1/events", {"originator": {"id": user, "version": 1},
                                   "event_type": "TourUser.Created", "payload": {}}),
            409, "append at a taken version")
    expect(j["error"]["code"] == "conflict" and j["error"]["details"]["current_version"] == 1,
           f"the 409 body: {j}")
    _ok(es.post("/v1/events", {"originator": {"id": user}, "event_type": "TourUser.Renamed",
                               "payload": {"name": "Ada"}}), 201, "append (next version)")
    _ok(es.post("/v1/events", {"originator": {"id": f"tour-order-{run}"},
                               "event_type": "TourOrder.Placed", "payload": {"total": 3}}),
        201, "append (another stream)")
    j = _ok(es.get(f"/v1/events/{user}"), 200, "stream read")
    expect([(e["originator"]["version"], e["event_type"]) for e in j["events"]] ==
           [(1, "TourUser.Created"), (2, "TourUser.Renamed")], f"stream read: {j}")
    j = _ok(es.get("/v1/logs", params={"from_id": first, "selector": "TourUser.*", "size": 100}),
            200, "log read with a selector")
    types = [r["event"]["event_type"] for r in j["results"]]
    expect(types == ["TourUser.Created", "TourUser.Renamed"], f"log read TourUser.*: {types}")

    # CRUD store: a type, create, read, patch, history, an old version
    _ok(crud.post("/v1/types", {"spec": {"entity_type": "TourTicket", "schema_spec": {
        "schema_version": 1, "json_schema": {"type": "object", "required": ["title"]}}}}),
        201, "register a CRUD type")
    _ok(crud.post("/v1/entities/TourTicket", {"payload": {"state": "open"}}), 400,
        "create against the schema")
    j = _ok(crud.post("/v1/entities/TourTicket", {"payload": {"title": "deploy", "state": "open"}}),
            201, "create a document")
    tid = j["originator"]["id"]
    r = crud.get(f"/v1/entities/TourTicket/{tid}")
    j = _ok(r, 200, "read the document")
    expect(j["payload"] == {"title": "deploy", "state": "open"} and r.header("ETag") == '"1"',
           f"read: {j} ETag {r.header('ETag')}")
    j = _ok(crud.patch(f"/v1/entities/TourTicket/{tid}", {"state": "done"}), 200, "patch")
    expect(j["originator"]["version"] == 2 and j["payload"]["state"] == "done", f"patch: {j}")
    j = _ok(crud.get(f"/v1/entities/TourTicket/{tid}/history"), 200, "history")
    expect([(v["version"], v["event_type"]) for v in j["versions"]] ==
           [(1, "TourTicket.Created"), (2, "TourTicket.Updated")], f"history: {j}")
    expect(j["versions"][1]["change"] == {"state": "done"}, f"history change: {j}")
    j = _ok(crud.get(f"/v1/entities/TourTicket/{tid}", params={"version": 1}), 200,
            "read version 1")
    expect(j["payload"]["state"] == "open", f"version 1: {j}")
    head = _ok(es.get("/v1/logs", params={"from_id": first, "size": 1000}), 200, "log head")
    last = head["head_id"]

    # consumer store: an offset, a stale compare-and-set
    consumer = f"tour-{run}"
    j = _ok(cs.put(f"/v1/consumers/{consumer}", {"offset": 5}), 200, "set an offset")
    expect(j["offset"] == 5, f"offset: {j}")
    _ok(cs.put(f"/v1/consumers/{consumer}", {"offset": 7, "expected_offset": 5}), 200,
        "compare-and-set")
    j = _ok(cs.put(f"/v1/consumers/{consumer}", {"offset": 9, "expected_offset": 5}), 409,
            "a stale compare-and-set")
    expect(j["error"]["code"] == "conflict", f"stale CAS: {j}")
    expect(_ok(cs.get(f"/v1/consumers/{consumer}"), 200, "read the offset")["offset"] == 7,
           "the stale compare-and-set changed the offset")
    say(f"tour: event store, CRUD store and consumer store answered (log head {last})")

    # the metrics consumer: its counters, and the offset it stored
    name = stack.config()["services"]["metrics-consumer"]["environment"].get(
        "ESKIT_CONSUMER_NAME", "metrics-consumer")

    seen = {}

    def counted():
        status, _, text = fetch_metrics(mc_url)
        seen["text"] = text
        m = Metrics(text) if status == 200 else None
        ok = m and (
            m.total("eskit_events_total", entity_type="TourUser", event_type="Created") >= 1
            and m.total("eskit_events_total", entity_type="TourUser", event_type="Renamed") >= 1
            and m.total("eskit_crud_events_total", entity_type="TourTicket",
                        event_type="Updated") >= 1
            and m.total("eskit_consumer_offset", consumer=name) >= last)
        return m if ok else None

    try:
        m = wait_for("the metrics consumer did not count the tour's events", counted, 20)
    except StackError as e:
        lines = [ln for ln in seen.get("text", "").splitlines()
                 if ln.startswith(("eskit_events", "eskit_crud", "eskit_consumer"))]
        raise StackError(f"{e}\nits /metrics:\n" + "\n".join(lines[-20:]) +
                         "\n--- metrics-consumer (last lines of its log)\n" +
                         stack.logs("metrics-consumer", 15)) from None

    def stored_offset():
        j = cs.get(f"/v1/consumers/{name}").json or {}
        return j if j.get("offset", 0) >= last else None

    stored = wait_for("the metrics consumer did not store its offset in the consumer store",
                      stored_offset, 15)
    say(f"tour: the metrics consumer counted them (TourUser.Created "
        f"{m.total('eskit_events_total', entity_type='TourUser', event_type='Created'):.0f}, "
        f"lag {m.total('eskit_consumer_lag', consumer=name):.0f}) and stored offset "
        f"{stored['offset']}")
    return last


# ---------------------------------------------------------------- Prometheus

def check_prometheus(stack):
    prom = Client(stack.url("prometheus", 9090))
    cfg = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in cfg["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}

    def query(q):
        j = _ok(prom.get("/api/v1/query", params={"query": q}), 200, f"query {q}")
        return j["data"]["result"]

    def all_up():
        res = query("up")
        up = {r["metric"]["instance"]: r["value"][1] for r in res}
        return up if set(up) >= targets and all(up[t] == "1" for t in targets) else None

    up = wait_for(f"Prometheus does not see every target up ({sorted(targets)})", all_up, 60, 1)
    say(f"Prometheus: up == 1 for {len(up)} targets ({', '.join(sorted(up))})")

    def scraped():
        res = query('eskit_events_total{entity_type="TourUser"}')
        return res or None

    res = wait_for("Prometheus has not scraped eskit_events_total of the tour", scraped, 45, 1)
    say(f"Prometheus: eskit_events_total scraped ({len(res)} TourUser series)")

    from test_deploy import dashboard_metric_names
    missing = [n for n in dashboard_metric_names() if not query(f'count({{__name__="{n}"}})')]
    expect(not missing, f"metrics the dashboards query have no series in Prometheus: {missing}")
    say(f"Prometheus: every metric the dashboards query has series "
        f"({len(dashboard_metric_names())} names)")

    graf = Client(stack.url("grafana", 3000))
    j = _ok(graf.get("/api/health"), 200, "Grafana /api/health")
    say(f"Grafana: /api/health answers ({j.get('version', '?')})")


# ---------------------------------------------------------------- main

def refuse_taken_ports(stack):
    try:
        stack.refuse_taken_ports()
    except StackError as e:
        raise Refused(str(e)) from None


def clear_leftovers(stack):
    """down -v of containers of this project that a killed run left (the
    engine restarts them when it starts: their restart policy)."""
    if stack.leftovers():
        say(f"removing what an earlier run of {stack.project} left")
        stack.down()


def main():
    ap = argparse.ArgumentParser(description="docker-compose.yml run for real, then removed")
    ap.add_argument("-f", "--file", action="append", default=[],
                    help="a Compose override file (a broken deploy, for the test that it fails)")
    ap.add_argument("-p", "--project", default=PROJECT)
    args = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)

    t0 = time.monotonic()
    status, size, touched = 1, None, False
    engine = stk.private_engine()
    stack = stk.Stack(engine, args.project, args.file)
    try:
        preflight()
        lock = take_lock()  # noqa: F841 (held until exit)
        if engine.answers():
            touched = True
            clear_leftovers(stack)
        refuse_taken_ports(stack)      # before anything starts
        touched = True
        engine.start()
        clear_leftovers(stack)
        refuse_taken_ports(stack)      # another project the engine restarted
        size = stack.build_images()
        expect(size < IMAGE_TARGET, f"eskit:latest is {size / 1e6:.1f} MB, over the "
               f"{IMAGE_TARGET / 1e6:.0f} MB target")
        containers = stack.up()
        say("every container is healthy")
        check_hardening(stack, containers)
        tour(stack)
        check_prometheus(stack)
        status = 0
    except Refused as e:
        say(f"REFUSED: {e}")
        status = 2
    except StackError as e:
        say(f"FAILED: {e}")
    except Interrupted as e:
        say(f"stopped by signal {e.signum}: cleaning up")
        status = 128 + e.signum
    except Exception:  # a bug here: still clean up, and show it
        say("FAILED: the deploy test itself broke:\n" + traceback.format_exc())
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if touched:
            status = cleanup(engine, stack, status)
    took = time.monotonic() - t0
    verdict = {0: "passed", 1: "FAILED", 2: "refused to start"}.get(status, "stopped")
    img = f"eskit:latest {size / 1e6:.1f} MB" if size else "no image built"
    say(f"deploy test {verdict} in {took:.1f}s ({img})")
    sys.exit(status)


def cleanup(engine, stack, status):
    """down -v, a check that nothing is left, and the engine stopped when
    this run started it or it holds no container at all (one that a killed
    run left running); returns the exit status, 1 if cleaning up failed."""
    try:
        if engine.answers():
            if stack.leftovers():
                stack.down()
            left = stack.leftovers()
            if left:
                say(f"FAILED: left behind after down: {', '.join(left)}")
                status = status or 1
            else:
                say(f"down: nothing of {stack.project} is left")
        if engine.started or (engine.answers() and not engine.docker("ps", "-aq").stdout.split()):
            engine.stop()
            say("private Docker engine stopped")
    except StackError as e:
        say(f"FAILED cleaning up: {e}")
        status = status or 1
    return status


if __name__ == "__main__":
    main()
