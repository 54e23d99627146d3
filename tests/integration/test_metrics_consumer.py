"""The metrics consumer (SPEC §6), black box: the real event store and
consumer store binaries, and the metrics consumer reading the log between
them. The CRUD store is played by a small fake in this module (it is only
asked GET /v1/types/{entity_type}), unless noted.

Covered: the counters and gauges it exports (checked by promtool), the
token sent upstream, crash and resume from the stored offset (at least
once), outages of the consumer store and of the event store (the process
stays up, /readyz says 503, errors are counted, and it catches up when the
dependency is back on the same database), and two instances under one name
(the stored offset never goes backwards)."""
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import types

import pytest

from eskit import BIN_DIR, SANITIZE, Client, free_port
from promcheck import check_metrics

TOKEN = "mc-test-token"
NAME = "metrics-consumer"
SLOW = 3 if SANITIZE else 1

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(BIN_DIR, "eskit-consumer-store")),
    reason="eskit-consumer-store is not built")


# --- helpers -----------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"bad exposition line: {line!r}"
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def family_sum(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def scrape(mc):
    r = mc.client().get("/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain")
    return r.body


def wait_until(fn, timeout=30, what="condition"):
    deadline = time.time() + timeout * SLOW
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def ev(oid, etype, payload=None):
    return {"originator": {"id": oid}, "event_type": etype, "payload": payload or {}}


def append(es, events):
    c = es.client(token=TOKEN)
    for i in range(0, len(events), 1000):
        r = c.post("/v1/events", {"events": events[i:i + 1000]})
        assert r.status == 201, r


def head_id(es):
    r = es.client(token=TOKEN).get("/v1/logs", params={"from_id": 0, "size": 1})
    assert r.status == 200, r
    return r.json["head_id"]


def stored_offset(cs, name=NAME):
    r = cs.client(token=TOKEN, timeout=5).get(f"/v1/consumers/{name}")
    if r.status == 404:
        return 0
    assert r.status == 200, r
    return r.json["offset"]


class FakeCrud:
    """GET /v1/types/{t}: 200 for registered types, else 404; counts lookups
    and remembers the Authorization headers it saw."""

    def __init__(self, registered):
        self.registered = set(registered)
        self.lookups = {}
        self.auth = set()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                status, body = 404, {"error": {"code": "not_found", "message": "no such path"}}
                if self.path.startswith("/v1/types/"):
                    t = self.path[len("/v1/types/"):]
                    fake.lookups[t] = fake.lookups.get(t, 0) + 1
                    fake.auth.add(self.headers.get("Authorization"))
                    if t in fake.registered:
                        status, body = 200, {"spec": {"entity_type": t}}
                    else:
                        body = {"error": {"code": "not_found", "message": f"no type {t}"}}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sqlite_url():
    tmp = tempfile.mkdtemp(prefix="eskit-mc-db-")
    counter = [0]

    def make():
        counter[0] += 1
        return f"sqlite:{tmp}/db{counter[0]}.db"

    yield make
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def crud():
    f = FakeCrud({"User", "com.acme.billing.Invoice"})
    yield f
    f.close()


def _stack(services, make_db, crud):
    es_env = {"ESKIT_DATABASE_URL": make_db(), "ESKIT_API_TOKEN": TOKEN}
    cs_env = {"ESKIT_DATABASE_URL": make_db(), "ESKIT_API_TOKEN": TOKEN}
    es = services("event-store", es_env)
    cs = services("consumer-store", cs_env)
    assert es.wait_ready(), es.log()
    assert cs.wait_ready(), cs.log()

    def start_mc(wait_ready=True, **env):
        e = {"ESKIT_EVENT_STORE_URL": es.url, "ESKIT_CONSUMER_STORE_URL": cs.url,
             "ESKIT_CRUD_STORE_URL": crud.url, "ESKIT_API_TOKEN": TOKEN,
             "ESKIT_CONSUMER_POLL_WAIT": "1"}
        e.update(env)
        mc = services("metrics-consumer", e)
        if wait_ready:
            assert mc.wait_ready(), mc.log()
        return mc

    return types.SimpleNamespace(es=es, cs=cs, start_mc=start_mc, es_env=es_env,
                                 cs_env=cs_env)


@pytest.fixture
def stack(services, sqlite_url, crud):
    """Starts the event store and the consumer store (SQLite, with a token).
    Returns a namespace: es, cs, their environments (to restart them on the
    same database), and start_mc(**env), which starts a metrics consumer
    pointed at them."""
    return _stack(services, sqlite_url, crud)


@pytest.fixture
def pg_stack(services, pg, crud):
    """The same on PostgreSQL."""
    return _stack(services, pg.new_database, crud)


def caught_up(es, cs, mc=None, name=NAME):
    """Waits until the stored offset (and the gauge, given mc) is the head."""
    head = head_id(es)
    wait_until(lambda: stored_offset(cs, name) == head, what=f"stored offset {head}")
    if mc is not None:
        wait_until(lambda: metric(parse_metrics(scrape(mc)), "eskit_consumer_offset",
                                  consumer=name) == head, what="offset gauge")
    return head


# --- tests -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["stack", "pg_stack"])
def test_counts_events_and_crud_events(kind, request, crud):
    stack = request.getfixturevalue(kind)
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc = start_mc()
    events = ([ev(f"u{i}", "User.Created") for i in range(3)]
              + [ev("u0", "User.Updated"), ev("u1", "User.Updated"), ev("u2", "User.Deleted"),
                 ev("u0", "User.Renamed")]
              + [ev(f"o{i}", "Order.Created") for i in range(2)]
              + [ev("inv1", "com.acme.billing.Invoice.Created"),
                 ev("inv1", "com.acme.billing.Invoice.Paid")])
    append(es, events)
    head = caught_up(es, cs, mc)
    assert head == len(events)

    s = parse_metrics(scrape(mc))
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Created") == 3
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Updated") == 2
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Deleted") == 1
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Renamed") == 1
    assert metric(s, "eskit_events_total", entity_type="Order", event_type="Created") == 2
    assert metric(s, "eskit_events_total", entity_type="com.acme.billing.Invoice",
                  event_type="Paid") == 1
    assert family_sum(s, "eskit_events_total") == len(events)

    # only Created/Updated/Deleted of registered types
    assert metric(s, "eskit_crud_events_total", entity_type="User", event_type="Created") == 3
    assert metric(s, "eskit_crud_events_total", entity_type="User", event_type="Updated") == 2
    assert metric(s, "eskit_crud_events_total", entity_type="User", event_type="Deleted") == 1
    assert metric(s, "eskit_crud_events_total", entity_type="com.acme.billing.Invoice",
                  event_type="Created") == 1
    assert family_sum(s, "eskit_crud_events_total") == 7

    assert metric(s, "eskit_consumer_offset", consumer=NAME) == head
    assert metric(s, "eskit_consumer_lag", consumer=NAME) == 0
    assert ("eskit_consumer_errors_total", (("consumer", NAME),)) in s
    assert metric(s, "eskit_consumer_errors_total", consumer=NAME) == 0

    # the CRUD store is asked once per type, with the token
    assert crud.lookups.get("User") == 1
    assert crud.lookups.get("Order") == 1
    assert crud.lookups.get("com.acme.billing.Invoice") == 1
    assert crud.auth == {"Bearer " + TOKEN}

    # more of the same types: counted, no new lookups
    append(es, [ev("u9", "User.Created"), ev("o9", "Order.Created")])
    caught_up(es, cs, mc)
    s = parse_metrics(scrape(mc))
    assert metric(s, "eskit_crud_events_total", entity_type="User", event_type="Created") == 4
    assert metric(s, "eskit_events_total", entity_type="Order", event_type="Created") == 3
    assert crud.lookups.get("User") == 1 and crud.lookups.get("Order") == 1

    # promtool and the SPEC §2 rules; the consumer's families and their types
    m = check_metrics(mc.url)
    for fam, typ in [("eskit_events_total", "counter"), ("eskit_crud_events_total", "counter"),
                     ("eskit_consumer_offset", "gauge"), ("eskit_consumer_lag", "gauge"),
                     ("eskit_consumer_errors_total", "counter")]:
        assert m.types.get(fam) == typ, (fam, m.types.get(fam))


def test_endpoints_and_help(stack):
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc = start_mc()
    c = mc.client()
    assert c.get("/healthz").json == {"status": "ok"}
    assert c.get("/readyz").json == {"status": "ready"}
    for path in ("/v1", "/v1/consumers", "/v1/logs", "/nope"):
        r = mc.client(token=TOKEN).get(path)
        assert r.status == 404, (path, r)
        assert r.json["error"]["code"] == "not_found"
    out = subprocess.run([os.path.join(BIN_DIR, "eskit-metrics-consumer"), "--help"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for var in ("ESKIT_LISTEN", "ESKIT_EVENT_STORE_URL", "ESKIT_CRUD_STORE_URL",
                "ESKIT_CONSUMER_STORE_URL", "ESKIT_CONSUMER_NAME", "ESKIT_API_TOKEN"):
        assert var in out.stdout, var
    assert "127.0.0.1:8083" in out.stdout


def test_wrong_token_is_not_ready(stack):
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc = start_mc(wait_ready=False, ESKIT_API_TOKEN="wrong")
    wait_until(lambda: metric(parse_metrics(scrape(mc)), "eskit_consumer_errors_total",
                              consumer=NAME) >= 1, what="errors")
    r = mc.client().get("/readyz")
    assert r.status == 503 and r.json["error"]["code"] == "unavailable", r


def test_crash_and_resume(stack):
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    n = 400
    append(es, [ev(f"c{i}", "User.Created") for i in range(n)])
    mc = start_mc(ESKIT_CONSUMER_BATCH_SIZE="1")
    # kill it mid-stream: once it has saved something, before it is done
    wait_until(lambda: stored_offset(cs) >= 20, what="some progress")
    mc.kill9()
    time.sleep(0.5)  # a save it sent just before dying may still land
    at_kill = stored_offset(cs)
    assert 20 <= at_kill <= n
    append(es, [ev(f"d{i}", "Order.Created") for i in range(50)])
    head = head_id(es)
    assert head == n + 50
    assert stored_offset(cs) == at_kill, "nobody moves the offset while it is down"

    mc2 = start_mc(ESKIT_CONSUMER_BATCH_SIZE="7")
    caught_up(es, cs, mc2)
    s = parse_metrics(scrape(mc2))
    # every entry after the stored offset is counted by the new process
    assert family_sum(s, "eskit_events_total") >= head - at_kill
    assert metric(s, "eskit_events_total", entity_type="Order", event_type="Created") == 50
    assert metric(s, "eskit_events_total", entity_type="User",
                  event_type="Created") >= n - at_kill
    assert metric(s, "eskit_consumer_lag", consumer=NAME) == 0


def test_consumer_store_outage(stack, services):
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc = start_mc()
    append(es, [ev(f"a{i}", "User.Created") for i in range(10)])
    caught_up(es, cs, mc)

    assert cs.stop() == 0
    wait_until(lambda: mc.client().get("/readyz").status == 503, what="readyz 503")
    r = mc.client().get("/readyz")
    assert r.json["error"]["code"] == "unavailable"
    assert mc.client().get("/healthz").status == 200
    errors0 = metric(parse_metrics(scrape(mc)), "eskit_consumer_errors_total", consumer=NAME)
    append(es, [ev(f"b{i}", "User.Updated") for i in range(5)])
    # it reads and counts the entries, but cannot save the offset: errors grow
    wait_until(lambda: metric(parse_metrics(scrape(mc)), "eskit_consumer_errors_total",
                              consumer=NAME) >= errors0 + 2, what="errors grow")
    assert mc.proc.poll() is None
    assert mc.client().get("/healthz").status == 200
    assert mc.client().get("/readyz").status == 503

    # the consumer store is back, on the same database and port
    cs2 = services("consumer-store", stack.cs_env, port=cs.port)
    assert cs2.wait_ready(), cs2.log()
    head = caught_up(es, cs2, mc)
    assert head == 15
    assert mc.wait_ready()
    s = parse_metrics(scrape(mc))
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Updated") >= 5
    assert metric(s, "eskit_consumer_lag", consumer=NAME) == 0


def test_event_store_outage(stack, services):
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc = start_mc()
    append(es, [ev(f"a{i}", "User.Created") for i in range(10)])
    caught_up(es, cs, mc)

    assert es.stop() == 0
    wait_until(lambda: mc.client().get("/readyz").status == 503, what="readyz 503")
    errors0 = metric(parse_metrics(scrape(mc)), "eskit_consumer_errors_total", consumer=NAME)
    wait_until(lambda: metric(parse_metrics(scrape(mc)), "eskit_consumer_errors_total",
                              consumer=NAME) >= errors0 + 2, what="errors grow")
    assert mc.proc.poll() is None
    assert mc.client().get("/healthz").status == 200

    es2 = services("event-store", stack.es_env, port=es.port)
    assert es2.wait_ready(), es2.log()
    append(es2, [ev(f"b{i}", "Order.Created") for i in range(5)])
    head = caught_up(es2, cs, mc)
    assert head == 15
    assert mc.wait_ready()
    s = parse_metrics(scrape(mc))
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Created") == 10
    assert metric(s, "eskit_events_total", entity_type="Order", event_type="Created") == 5


def test_starts_with_upstreams_down(services, sqlite_url, crud):
    """Nothing is up yet: the process starts, is not ready, and catches up
    once both stores are started."""
    es_port, cs_port = free_port(), free_port()
    mc = services("metrics-consumer", {
        "ESKIT_EVENT_STORE_URL": f"http://127.0.0.1:{es_port}",
        "ESKIT_CONSUMER_STORE_URL": f"http://127.0.0.1:{cs_port}",
        "ESKIT_CRUD_STORE_URL": crud.url, "ESKIT_CONSUMER_POLL_WAIT": "1"})
    assert mc.client().get("/readyz").status == 503
    wait_until(lambda: metric(parse_metrics(scrape(mc)), "eskit_consumer_errors_total",
                              consumer=NAME) >= 2, what="errors")
    es = services("event-store", {"ESKIT_DATABASE_URL": sqlite_url()}, port=es_port)
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": sqlite_url()}, port=cs_port)
    es.client().post("/v1/events", {"events": [ev("x", "User.Created")]})
    wait_until(lambda: Client(cs.url).get(f"/v1/consumers/{NAME}").status == 200
               and Client(cs.url).get(f"/v1/consumers/{NAME}").json["offset"] == 1,
               what="offset 1")
    assert mc.wait_ready()


def test_two_instances_one_name(stack):
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc1 = start_mc(ESKIT_CONSUMER_BATCH_SIZE="3")
    mc2 = start_mc(ESKIT_CONSUMER_BATCH_SIZE="5")
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append(stored_offset(cs))
            except OSError:
                pass
            time.sleep(0.005)

    t = threading.Thread(target=sample)
    t.start()
    try:
        for round_ in range(6):
            append(es, [ev(f"r{round_}-{i}", "User.Created") for i in range(60)])
            time.sleep(0.1)
        head = caught_up(es, cs)
    finally:
        stop.set()
        t.join()
    assert len(samples) > 20
    assert all(a <= b for a, b in zip(samples, samples[1:])), \
        "the stored offset went backwards"
    assert samples[-1] <= head
    for mc in (mc1, mc2):
        # both keep up: each ends at the head (the loser of a race re-reads it)
        wait_until(lambda mc=mc: metric(parse_metrics(scrape(mc)), "eskit_consumer_offset",
                                        consumer=NAME) == head, what="both at the head")
        assert mc.proc.poll() is None
    # between them, every entry was counted at least once
    total = sum(family_sum(parse_metrics(scrape(mc)), "eskit_events_total")
                for mc in (mc1, mc2))
    assert total >= head


@pytest.mark.skipif(not os.path.exists(os.path.join(BIN_DIR, "eskit-crud-store")),
                    reason="eskit-crud-store is not built")
def test_with_the_real_crud_store(services, sqlite_url):
    """The same counting against the real CRUD store: a registered type's
    documents count in eskit_crud_events_total, an unregistered one's not."""
    es = services("event-store", {"ESKIT_DATABASE_URL": sqlite_url()})
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": sqlite_url()})
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert es.wait_ready() and cs.wait_ready() and crud.wait_ready(), crud.log()
    c = crud.client()
    r = c.post("/v1/types", {"spec": {"entity_type": "Book"}})
    assert r.status == 201, r
    r = c.post("/v1/entities/Book", {"payload": {"title": "A"}})
    assert r.status == 201, r
    bid = r.json["originator"]["id"]
    assert c.put(f"/v1/entities/Book/{bid}",
                 {"originator": {"version": 1}, "payload": {"title": "B"}}).status == 200
    assert c.delete(f"/v1/entities/Book/{bid}").status == 200
    assert c.post("/v1/entities/Note", {"payload": {"x": 1}}).status == 201
    mc = services("metrics-consumer", {
        "ESKIT_EVENT_STORE_URL": es.url, "ESKIT_CONSUMER_STORE_URL": cs.url,
        "ESKIT_CRUD_STORE_URL": crud.url, "ESKIT_CONSUMER_POLL_WAIT": "1"})
    caught_up(es, cs, mc)
    s = parse_metrics(scrape(mc))
    for name in ("Created", "Updated", "Deleted"):
        assert metric(s, "eskit_crud_events_total", entity_type="Book", event_type=name) == 1
    assert metric(s, "eskit_events_total", entity_type="Note", event_type="Created") == 1
    assert metric(s, "eskit_crud_events_total", entity_type="Note", event_type="Created") == 0


@pytest.mark.parametrize("kind", ["stack", "pg_stack"])
def test_counts_an_erasure_like_any_entry(kind, request, crud):
    """A stream's erasure leaves one ENTITY.Erased entry in the log (SPEC §3):
    counted in eskit_events_total; no CRUD event, even of a registered type."""
    stack = request.getfixturevalue(kind)
    es, cs, start_mc = stack.es, stack.cs, stack.start_mc
    mc = start_mc()
    append(es, [ev("gone1", "User.Created"), ev("gone1", "User.Updated"),
                ev("o1", "Order.Created")])
    caught_up(es, cs, mc)
    r = es.client(token=TOKEN).delete("/v1/streams/gone1")
    assert r.status == 204, r
    head = caught_up(es, cs, mc)
    s = parse_metrics(scrape(mc))
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Erased") == 1
    assert metric(s, "eskit_events_total", entity_type="User", event_type="Created") == 1
    assert family_sum(s, "eskit_events_total") == 4
    assert ("eskit_crud_events_total", (("entity_type", "User"), ("event_type", "Erased"))) \
        not in s
    assert family_sum(s, "eskit_crud_events_total") == 2
    assert metric(s, "eskit_consumer_offset", consumer=NAME) == head
