"""The four services scraped by a real Prometheus server (SPEC §2, §6), black box.

The event store, the consumer store, the CRUD store and the metrics consumer
run on loopback (once per back end: SQLite, PostgreSQL); a real `prometheus`
binary (Debian package) runs in a temp dir and scrapes their /metrics every
second. After a scripted workload -- a registered CRUD type `Order` with
documents created, replaced (PUT + If-Match), patched (PATCH) and deleted,
plus plain events of an unregistered type `Audit` and a non-CRUD event name
`Order.Noted` appended straight to the event store -- Prometheus's query API
must give, from the metrics consumer's target:

- `eskit_events_total`: exactly one per log entry, by entity type and event
  name; this includes the type registration itself, which SPEC §4 stores as a
  document of the reserved type `eskit.EntityType` (one
  `eskit.EntityType.Created` event), because §6 counts *every* log entry;
- `eskit_crud_events_total`: only `Order` Created/Updated/Deleted. Nothing for
  `Audit` (not registered), nothing for `Order.Noted` (not a CRUD event name)
  and nothing for `eskit.EntityType`: it is the reserved type that holds the
  registrations, never itself registered in the CRUD store (types starting
  with `eskit.` cannot be registered), so §6 ("entity types registered in the
  CRUD store") excludes it;
- `up` == 1 for all four targets.

The counts are exact: the metrics consumer counts at least once, but in a clean
run (no crash, no outage) every entry is counted once. A counter never goes
down, so a value above the expected one fails at once.

Only the Python standard library and pytest are used.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from eskit import SANITIZE, Client, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SLOW = 3 if SANITIZE else 1
JOBS = ("event-store", "crud-store", "consumer-store", "metrics-consumer")
CONSUMER = "metrics-consumer"

N_ORDERS = 10          # Order documents created through the CRUD store
PUT_IDX = (0, 1, 2)    # replaced with PUT + If-Match
PATCH_IDX = (2, 3)     # merge-patched (2 is updated twice: PUT, then PATCH)
DELETE_IDX = (4, 5, 2)  # deleted (2 after its two updates)
M_AUDIT = 7            # Audit.Logged events appended directly (unregistered type)

pytestmark = pytest.mark.skipif(not os.access(PROMETHEUS, os.X_OK),
                                reason="prometheus is not installed")


# --- Prometheus --------------------------------------------------------------

class Prometheus:
    """A real Prometheus server on a free loopback port, in a temp dir."""

    def __init__(self, targets):
        self.dir = tempfile.mkdtemp(prefix="eskit-prom-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = os.path.join(self.dir, "prometheus.yml")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        lines = ["global:",
                 "  scrape_interval: 1s",
                 "  scrape_timeout: 1s",
                 "  evaluation_interval: 1s",
                 "scrape_configs:"]
        for job, hostport in targets.items():
            lines += [f"  - job_name: {json.dumps(job)}",
                      "    metrics_path: /metrics",
                      "    static_configs:",
                      f"      - targets: [{json.dumps(hostport)}]"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.logf = None

    def start(self, timeout=30):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            cwd=self.dir, stdout=self.logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n"
                                   + self.log())
            try:
                if Client(self.url, timeout=2).get("/-/ready").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("prometheus did not become ready:\n" + self.log())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-8000:]
        except OSError:
            return ""

    def api(self, path, **params):
        r = Client(self.url, timeout=5).get(path, params=params or None)
        assert r.status == 200 and r.json and r.json.get("status") == "success", \
            f"Prometheus {path} {params}: {r!r}"
        return r.json["data"]

    def query(self, q):
        """Instant query -> the vector's results [{"metric": {...}, "value": [t, "v"]}]."""
        data = self.api("/api/v1/query", query=q)
        assert data["resultType"] == "vector", data
        return data["result"]


@pytest.fixture
def prometheus_factory():
    started = []

    def start(targets):
        p = Prometheus(targets)
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.destroy()


# --- the workload ------------------------------------------------------------

def workload(crud, es):
    """Runs the scripted workload; returns (events_total, crud_events_total),
    the expected counters as {(entity_type, event_type): n}."""
    c, e = crud.client(), es.client()
    events, crud_events = {}, {}

    def count(table, et, name, n=1):
        table[(et, name)] = table.get((et, name), 0) + n

    r = c.post("/v1/types", {"spec": {"entity_type": "Order"}})
    assert r.status == 201, f"register Order: {r!r}"
    # the registration is one event of the reserved type (SPEC §4): in the
    # log, so in eskit_events_total, but never a CRUD event (see the docstring)
    count(events, "eskit.EntityType", "Created")

    ids = []
    for i in range(N_ORDERS):
        r = c.post("/v1/entities/Order", {"payload": {"n": i, "status": "new"}})
        assert r.status == 201, f"create Order #{i}: {r!r}"
        ids.append(r.json["originator"]["id"])
        count(events, "Order", "Created")
        count(crud_events, "Order", "Created")

    versions = {oid: 1 for oid in ids}
    for i in PUT_IDX:
        oid = ids[i]
        r = c.put(f"/v1/entities/Order/{oid}", {"payload": {"n": i, "status": "paid"}},
                  headers={"If-Match": f'"{versions[oid]}"'})
        assert r.status == 200, f"PUT Order #{i}: {r!r}"
        versions[oid] += 1
        count(events, "Order", "Updated")
        count(crud_events, "Order", "Updated")
    for i in PATCH_IDX:
        oid = ids[i]
        r = c.patch(f"/v1/entities/Order/{oid}", {"status": "shipped", "n": None},
                    headers={"Content-Type": "application/merge-patch+json"})
        assert r.status == 200, f"PATCH Order #{i}: {r!r}"
        versions[oid] += 1
        count(events, "Order", "Updated")
        count(crud_events, "Order", "Updated")
    for i in DELETE_IDX:
        oid = ids[i]
        r = c.delete(f"/v1/entities/Order/{oid}", headers={"If-Match": f'"{versions[oid]}"'})
        assert r.status == 200, f"DELETE Order #{i}: {r!r}"
        count(events, "Order", "Deleted")
        count(crud_events, "Order", "Deleted")

    # plain events straight to the event store: an unregistered type (one
    # batch and a few single appends), and a non-CRUD event name of a
    # registered type
    batch = [{"originator": {"id": f"audit-{i % 2}"}, "event_type": "Audit.Logged",
              "payload": {"i": i}} for i in range(M_AUDIT - 3)]
    r = e.post("/v1/events", {"events": batch})
    assert r.status == 201, f"append Audit batch: {r!r}"
    for i in range(M_AUDIT - 3, M_AUDIT):
        r = e.post("/v1/events", {"originator": {"id": f"audit-{i}"},
                                  "event_type": "Audit.Logged", "payload": {"i": i}})
        assert r.status == 201, f"append Audit #{i}: {r!r}"
    count(events, "Audit", "Logged", M_AUDIT)
    r = e.post("/v1/events", {"originator": {"id": "order-notes-1"},
                              "event_type": "Order.Noted", "payload": {"text": "hi"}})
    assert r.status == 201, f"append Order.Noted: {r!r}"
    count(events, "Order", "Noted")
    return events, crud_events


def log_head(es):
    r = es.client().get("/v1/logs", params={"from_id": 0, "size": 1})
    assert r.status == 200, r
    return r.json["head_id"]


# --- reading Prometheus's answers --------------------------------------------

def by_labels(results, *labels):
    """{(label values...): float} of a vector; every non-zero series kept.
    A zero-valued series means "counted nothing", the same as no series."""
    out = {}
    for s in results:
        key = tuple(s["metric"].get(k, "") for k in labels)
        v = float(s["value"][1])
        assert key not in out, f"two series for {key}: {results}"
        if v != 0:
            out[key] = v
    return out


def snapshot(prom):
    q = {
        "events": 'eskit_events_total',
        "crud": 'eskit_crud_events_total',
        "up": 'up',
        "offset": f'eskit_consumer_offset{{consumer="{CONSUMER}"}}',
    }
    raw = {k: prom.query(v) for k, v in q.items()}
    return raw, {
        "events": by_labels(raw["events"], "entity_type", "event_type"),
        "crud": by_labels(raw["crud"], "entity_type", "event_type"),
        "events_jobs": sorted({s["metric"].get("job") for s in raw["events"]}),
        "crud_jobs": sorted({s["metric"].get("job") for s in raw["crud"]}),
        "up": {s["metric"].get("job"): float(s["value"][1]) for s in raw["up"]},
        "offset": [float(s["value"][1]) for s in raw["offset"]],
    }


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def exposition(text, family):
    """{(entity_type, event_type): float} of one family's non-zero samples in
    a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != family:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        v = float(m.group(3))
        if v != 0:
            out[(labels.get("entity_type", ""), labels.get("event_type", ""))] = v
    return out


def targets_report(prom):
    try:
        data = prom.api("/api/v1/targets")
        return json.dumps([{k: t.get(k) for k in ("scrapePool", "scrapeUrl", "health",
                                                    "lastError", "lastScrape")}
                           for t in data.get("activeTargets", [])], indent=1)
    except (AssertionError, OSError) as e:
        return f"(targets API failed: {e})"


# --- the test ----------------------------------------------------------------

def test_prometheus_scrapes_expected_counts(backend, services, prometheus_factory):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    assert cs.wait_ready(), cs.log()
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud.wait_ready(), crud.log()
    mc = services("metrics-consumer", {
        "ESKIT_EVENT_STORE_URL": es.url, "ESKIT_CRUD_STORE_URL": crud.url,
        "ESKIT_CONSUMER_STORE_URL": cs.url, "ESKIT_CONSUMER_NAME": CONSUMER,
        "ESKIT_CONSUMER_POLL_WAIT": "1"})
    assert mc.wait_ready(), mc.log()
    svcs = {"event-store": es, "crud-store": crud, "consumer-store": cs,
            "metrics-consumer": mc}

    prom = prometheus_factory({job: f"127.0.0.1:{svcs[job].port}" for job in JOBS})

    exp_events, exp_crud = workload(crud, es)
    head = log_head(es)
    # every log entry is one of ours: the workload is the whole log
    assert head >= sum(exp_events.values()), f"log head {head} < {exp_events}"

    expected = {
        "events": exp_events,
        "crud": exp_crud,
        "events_jobs": [CONSUMER],
        "crud_jobs": [CONSUMER],
        "up": {job: 1.0 for job in JOBS},
    }

    def problems(got):
        out = []
        for key in ("events", "crud"):
            want, have = expected[key], got[key]
            for k in sorted(set(want) | set(have)):
                w, h = want.get(k, 0), have.get(k, 0)
                if h > w:   # counters never go down: this is final
                    raise AssertionError(
                        f"{key}: {k} is {h} in Prometheus, more than the {w} expected "
                        f"(a clean run counts every log entry once)\n"
                        f"expected {want}\ngot {have}")
                if h != w:
                    out.append(f"{key} {k}: {h} != {w}")
        for key in ("events_jobs", "crud_jobs", "up"):
            if got[key] != expected[key]:
                out.append(f"{key}: {got[key]} != {expected[key]}")
        if got["offset"] != [float(head)]:
            out.append(f"consumer offset {got['offset']} != log head {head}")
        return out

    deadline = time.time() + 30 * SLOW
    last = None
    while True:
        raw, got = snapshot(prom)
        last = problems(got)
        if not last:
            break
        if time.time() > deadline:
            dead = [f"{n} exited {s.proc.returncode}" for n, s in svcs.items()
                    if s.proc.poll() is not None]
            pytest.fail(
                "Prometheus did not reach the expected values within 30 s:\n  "
                + "\n  ".join(last)
                + f"\nexpected: {expected}\ngot: {got}"
                + f"\nraw answers: {json.dumps(raw, indent=1)}"
                + f"\ntargets: {targets_report(prom)}"
                + (f"\nexited services: {dead}" if dead else "")
                + f"\nmetrics consumer log:\n{mc.log()[-4000:]}"
                + f"\nprometheus log:\n{prom.log()[-3000:]}")
        time.sleep(0.2)

    # cross-check: Prometheus's answers agree with what the metrics consumer
    # serves itself right now (Prometheus neither lost nor invented series)
    r = mc.client().get("/metrics")
    assert r.status == 200, r
    for family, key in (("eskit_events_total", "events"), ("eskit_crud_events_total", "crud")):
        served = exposition(r.body, family)
        assert served == got[key], (f"{family}: /metrics serves {served}, "
                                    f"Prometheus answered {got[key]}")
    assert prom.proc.poll() is None, "prometheus died:\n" + prom.log()

