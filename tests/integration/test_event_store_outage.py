"""Database outages and graceful stop (SPEC §1): the event store starts while
PostgreSQL is down, answers 503 `unavailable` quickly, and recovers by itself
when the database is back; SIGTERM lets in-flight requests finish and exits 0.

The outage tests use their own PostgreSQL cluster (the session-wide `pg` cluster
is shared with other tests and must not be stopped)."""
import http.client
import signal
import subprocess
import threading
import time
import urllib.parse

import pytest

from eskit import Client, PgCluster

FAST = 2.0       # a 503 must come within this many seconds
RECOVER = 10.0   # after the database is back, the service recovers within this


@pytest.fixture(scope="module")
def own_pg():
    c = PgCluster()
    c.start()
    yield c
    c.destroy()


def pg_running(c):
    try:
        c.psql("SELECT 1")
        return True
    except subprocess.CalledProcessError:
        return False


def ensure_running(c):
    if not pg_running(c):
        c.start()


def ev(oid, etype="User.Created", version=None):
    e = {"originator": {"id": oid}, "event_type": etype, "payload": {"k": oid}}
    if version is not None:
        e["originator"]["version"] = version
    return e


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0


def assert_unavailable(es, what):
    """/readyz, POST /v1/events and GET /v1/logs all answer 503 unavailable fast."""
    c = Client(es.url, timeout=FAST + 3)
    checks = [("GET /readyz", lambda: c.get("/readyz")),
              ("POST /v1/events", lambda: c.post("/v1/events", ev("down"))),
              ("GET /v1/logs", lambda: c.get("/v1/logs")),
              ("GET /v1/events/x", lambda: c.get("/v1/events/x"))]
    for name, call in checks:
        r, dt = timed(call)
        assert r.status == 503, f"{what}: {name} -> {r} (after {dt:.2f}s)\n{es.log()[-3000:]}"
        assert r.json and r.json["error"]["code"] == "unavailable", f"{what}: {name} -> {r}"
        assert r.json["error"]["message"], r
        assert dt < FAST, f"{what}: {name} took {dt:.2f}s"
    # the process itself is alive
    r, dt = timed(c.get, "/healthz")
    assert r.status == 200 and r.json == {"status": "ok"}, r
    assert dt < FAST


def wait_recovered(es, oid):
    """After the database is back: /readyz 200 and an append succeeds, by itself."""
    deadline = time.monotonic() + RECOVER
    c = Client(es.url, timeout=5)
    last = None
    while time.monotonic() < deadline:
        try:
            last = c.get("/readyz")
            if last.status == 200:
                break
        except OSError as e:
            last = e
        time.sleep(0.1)
    else:
        pytest.fail(f"/readyz not 200 within {RECOVER}s of the database coming back: "
                    f"{last}\n{es.log()[-3000:]}")
    assert last.json == {"status": "ready"}, last
    while time.monotonic() < deadline + 2:
        last = c.post("/v1/events", ev(oid))
        if last.status == 201:
            return last.json["log_id"]
        assert last.status == 503, last
        time.sleep(0.1)
    pytest.fail(f"append still failing after recovery: {last}\n{es.log()[-3000:]}")


def test_starts_while_database_down_and_recovers(own_pg, services):
    ensure_running(own_pg)
    url = own_pg.new_database()
    own_pg.stop("fast")
    assert not pg_running(own_pg)
    # the process starts and is live, but not ready
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert_unavailable(es, "started while the database is down")
    time.sleep(0.5)
    assert_unavailable(es, "still down")
    own_pg.start()
    log_id = wait_recovered(es, "after-start")
    c = es.client()
    r = c.get("/v1/logs")
    assert r.status == 200, r
    assert [x["id"] for x in r.json["results"]] == [log_id]
    assert r.json["results"][0]["event"]["originator"] == {"id": "after-start", "version": 1}
    r = c.get("/v1/events/down")
    assert r.json == {"events": []}, "a 503 append must not have written anything"


def test_database_outage_while_running(own_pg, services):
    ensure_running(own_pg)
    url = own_pg.new_database()
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready(), es.log()
    c = es.client()
    before = []
    for i in range(5):
        r = c.post("/v1/events", ev("acct", version=i + 1))
        assert r.status == 201, r
        before.append(r.json["log_id"])
    # a long poll parked when the database goes away ends (200 or 503), it does not hang
    lp = {}

    def long_poll():
        try:
            lp["r"] = Client(es.url, timeout=60).get(
                "/v1/logs", params={"from_id": before[-1] + 1, "wait": 20})
        except Exception as e:  # noqa: BLE001
            lp["r"] = e
        lp["t"] = time.monotonic()

    th = threading.Thread(target=long_poll, daemon=True)
    th.start()
    time.sleep(0.3)

    own_pg.stop("fast")
    t_down = time.monotonic()
    assert_unavailable(es, "database stopped while running")
    time.sleep(0.5)
    assert_unavailable(es, "database still stopped")

    own_pg.start()
    log_id = wait_recovered(es, "after-outage")
    assert log_id > before[-1]
    # the stream goes on where it was
    r = c.post("/v1/events", ev("acct", version=6))
    assert r.status == 201, r
    r = c.get("/v1/events/acct")
    assert [e["originator"]["version"] for e in r.json["events"]] == [1, 2, 3, 4, 5, 6]
    r = c.get("/v1/logs", params={"from_id": 1, "size": 100})
    assert r.status == 200, r
    ids = [x["id"] for x in r.json["results"]]
    assert ids[:5] == before and log_id in ids and len(ids) == 7, ids
    assert r.json["head_id"] == ids[-1]
    # long polls work again
    h = r.json["head_id"]
    t0 = time.monotonic()
    r = c.get("/v1/logs", params={"from_id": h + 1, "wait": 1})
    assert r.status == 200 and r.json["results"] == [], r
    assert 0.8 < time.monotonic() - t0 < 4

    th.join(30)
    assert not th.is_alive(), "a long poll parked during the outage never answered"
    if isinstance(lp["r"], Exception):
        pytest.fail(f"long poll parked during the outage: {lp['r']!r}")
    assert lp["r"].status in (200, 503), lp["r"]
    print(f"parked long poll answered {lp['r'].status} "
          f"{lp['t'] - t_down:.2f}s after the database stopped")


# --- graceful stop, both back ends ----------------------------------------------

def test_sigterm_finishes_long_poll_and_exits_0(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    c = es.client()
    assert c.post("/v1/events", ev("g1")).status == 201
    h = c.get("/v1/logs").json["head_id"]
    res = {}

    def long_poll():
        try:
            res["r"] = Client(es.url, timeout=60).get(
                "/v1/logs", params={"from_id": h + 1, "wait": 30})
        except Exception as e:  # noqa: BLE001
            res["r"] = e
        res["t"] = time.monotonic()

    th = threading.Thread(target=long_poll, daemon=True)
    th.start()
    time.sleep(0.5)
    assert th.is_alive(), f"long poll answered before SIGTERM: {res}"
    t_term = time.monotonic()
    es.proc.send_signal(signal.SIGTERM)
    try:
        rc = es.proc.wait(12)
    except subprocess.TimeoutExpired:
        rc = None
    t_exit = time.monotonic()
    th.join(15)
    assert rc == 0, f"exit code {rc} {t_exit - t_term:.1f}s after SIGTERM\n{es.log()[-3000:]}"
    assert t_exit - t_term < 10, t_exit - t_term
    assert not th.is_alive()
    r = res["r"]
    assert not isinstance(r, Exception), (
        f"in-flight long poll got no answer on SIGTERM: {r!r}\n{es.log()[-3000:]}")
    assert r.status == 200, r
    assert r.json["results"] == [] and r.json["next_from_id"] == h + 1, r
    assert res["t"] - t_term < 10, res["t"] - t_term
    print(f"long poll answered {res['t'] - t_term:.2f}s, exit {t_exit - t_term:.2f}s "
          "after SIGTERM")


def test_sigterm_with_sse_stream_open_exits_0(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    u = urllib.parse.urlparse(es.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", "/v1/logs/stream")
    resp = conn.getresponse()
    assert resp.status == 200
    try:
        t_term = time.monotonic()
        es.proc.send_signal(signal.SIGTERM)
        try:
            rc = es.proc.wait(12)
        except subprocess.TimeoutExpired:
            rc = None
        dt = time.monotonic() - t_term
        assert rc == 0 and dt < 10, (
            f"exit code {rc} {dt:.1f}s after SIGTERM with an SSE stream open\n"
            f"{es.log()[-3000:]}")
        # the stream has ended (EOF), not left hanging
        conn.sock.settimeout(5)
        while resp.readline():
            pass
    finally:
        conn.close()
