"""Reading from standbys (SPEC §8): the event store's reads on a hot standby
(ESKIT_DATABASE_READ_URL), writes on the primary (ha.StandbyPair: a primary
and an asynchronous hot standby on loopback).

- The log guarantee, through a standby: 16 writers and a tailing reader on
  another replica whose reads are on the standby see exactly the full log,
  in order.
- Read-your-writes: a client that appends and then reads (its stream, the
  log, the stream's record, a listing) through the same event store sees its
  write, with the standby applying each commit late
  (recovery_min_apply_delay): within the wait the read waits for it, past it
  the primary answers.
- The CRUD store's query index read on a standby (its own
  ESKIT_DATABASE_READ_URL): a `_find` right after an acknowledged write sees
  it, through the replica that wrote and through a second one sharing the
  index, with the standby applying late.
- A standby paused (SIGSTOP) for 10 s makes no read fail or show less than
  was acknowledged (event-store reads and `_find`), and readers tailing the
  log miss nothing; afterwards reads go back to the standby.
"""
import json
import signal
import threading
import time
import uuid

import pytest

from eskit import Client
from ha import StandbyPair, psql
from test_event_store_log_guarantee import run_guarantee


@pytest.fixture(scope="module")
def pair():
    p = StandbyPair()
    try:
        p.start()
        yield p
    finally:
        p.destroy()


def metric(es, name, label=None):
    total = 0.0
    for line in Client(es.url).get("/metrics").body.splitlines():
        if line.startswith(name) and (label is None or label in line):
            total += float(line.split()[-1])
    return total


def start_es(pair, services, db):
    es = services("event-store", {"ESKIT_DATABASE_URL": pair.url(db),
                                  "ESKIT_DATABASE_READ_URL": pair.url(db, standby=True)})
    assert es.wait_ready(), es.log()
    return es


def start_crud(pair, services, es, db):
    """A CRUD store whose query index is `db` on the primary, read on the standby."""
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url,
                                   "ESKIT_DATABASE_URL": pair.url(db),
                                   "ESKIT_DATABASE_READ_URL": pair.url(db, standby=True)})
    assert crud.wait_ready(), crud.log()
    return crud


def found(c, etype, selector):
    r = c.post(f"/v1/entities/{etype}/_find", {"selector": selector})
    return r.status, [x["originator"]["id"] for x in (r.json or {}).get("results", [])]


def test_log_guarantee_through_a_standby(pair, services, capsys):
    db = pair.new_database()
    a = start_es(pair, services, db)
    b = start_es(pair, services, db)
    pair.set_apply_delay(0)
    run, elapsed = run_guarantee([a.url], [b.url], [("writers' replica", a.log),
                                                   ("readers' replica", b.log)])
    standby = metric(b, "eskit_db_reads_total", 'on="standby"')
    primary = metric(b, "eskit_db_reads_total", 'on="primary"')
    with capsys.disabled():
        print(f"\n[standby reads] log guarantee: {len(run.acked)} events, {run.reads} reads "
              f"({run.reads_during_writes} while writing) in {elapsed:.1f}s; the readers' "
              f"replica took {standby:.0f} standby and {primary:.0f} primary connections")
    assert run.reads_during_writes > 0
    assert standby > 0


def check_reads(es, oid, version, log_id):
    """Every read of the event store shows the write just acknowledged (the
    reads that learn no head from their answer first)."""
    c = Client(es.url, timeout=10)
    r = c.get(f"/v1/streams/{oid}")
    assert r.status == 200 and r.json["version"] == version, (version, r)
    r = c.get("/v1/streams", params={"entity_type": "Ryw", "limit": 1000})
    assert r.status == 200 and oid in [s["id"] for s in r.json["streams"]], r
    r = c.get(f"/v1/events/{oid}")
    assert r.status == 200 and r.json["events"] and \
        r.json["events"][-1]["originator"]["version"] == version, (version, r)
    r = c.get("/v1/logs", params={"from_id": log_id, "size": 1})
    assert r.status == 200 and [x["id"] for x in r.json["results"]] == [log_id], (log_id, r)
    assert r.json["head_id"] >= log_id, r


def append(es, oid):
    r = Client(es.url, timeout=10).post("/v1/events", {"originator": {"id": oid},
                                                       "event_type": "Ryw.Done",
                                                       "payload": {}})
    assert r.status == 201, r
    return r.json["event"]["originator"]["version"], r.json["log_id"]


@pytest.mark.parametrize("delay_ms,reason", [(300, "waits"), (2500, "primary")])
def test_read_your_writes(pair, services, capsys, delay_ms, reason):
    db = pair.new_database()
    es = start_es(pair, services, db)
    other = start_es(pair, services, db)  # acknowledged nothing: may show less
    pair.set_apply_delay(delay_ms)
    try:
        lag0 = metric(es, "eskit_standby_fallbacks_total", 'reason="lag"')
        stale_elsewhere = 0
        t0 = time.monotonic()
        n = 6 if delay_ms > 1000 else 15
        for i in range(n):
            oid = f"ryw-{delay_ms}-{i % 3}"
            version, log_id = append(es, oid)
            r = Client(other.url).get(f"/v1/events/{oid}")
            if not r.json["events"] or r.json["events"][-1]["originator"]["version"] < version:
                stale_elsewhere += 1
            check_reads(es, oid, version, log_id)
        elapsed = time.monotonic() - t0
        lag = metric(es, "eskit_standby_fallbacks_total", 'reason="lag"') - lag0
    finally:
        pair.set_apply_delay(0)
    with capsys.disabled():
        print(f"\n[standby reads] apply delay {delay_ms} ms: {n} appends, each followed by 4 "
              f"reads that showed it, in {elapsed:.1f}s; fallbacks to the primary for lag "
              f"{lag:.0f}; reads through a replica that wrote nothing were behind "
              f"{stale_elsewhere} times")
    if reason == "primary":
        assert lag > 0  # past the wait, the primary answered
    assert stale_elsewhere > 0  # the standby really was behind


def index_offset(pair, db, standby):
    port = pair.port if standby else pair.primary.port
    return int(psql(port, "SELECT log_offset FROM crud_index_state", db=db))


@pytest.mark.parametrize("delay_ms,reason", [(300, "waits"), (2500, "primary")])
def test_crud_find_read_your_writes(pair, services, capsys, delay_ms, reason):
    pair.set_apply_delay(0)
    es = services("event-store", {"ESKIT_DATABASE_URL": pair.url(pair.new_database())})
    assert es.wait_ready(), es.log()
    ixdb = pair.new_database()
    crud = start_crud(pair, services, es, ixdb)
    second = start_crud(pair, services, es, ixdb)  # shares the index
    c1, c2 = crud.client(), second.client()
    assert found(c1, "RywDoc", {"warm": True}) == (200, [])
    assert found(c2, "RywDoc", {"warm": True}) == (200, [])
    pair.set_apply_delay(delay_ms)
    behind = 0
    try:
        lag0 = metric(crud, "eskit_standby_fallbacks_total", 'reason="lag"') + \
            metric(second, "eskit_standby_fallbacks_total", 'reason="lag"')
        n = 6 if delay_ms > 1000 else 12
        t0 = time.monotonic()
        for i in range(n):
            r = c1.post("/v1/entities/RywDoc", {"payload": {"run": delay_ms, "i": i}})
            assert r.status == 201, r
            oid = r.json["originator"]["id"]
            if index_offset(pair, ixdb, True) < index_offset(pair, ixdb, False):
                behind += 1
            for c in (c1, c2) if i % 2 else (c2, c1):
                assert found(c, "RywDoc", {"run": delay_ms, "i": i}) == (200, [oid]), i
            r = c2.patch(f"/v1/entities/RywDoc/{oid}", {"j": i})
            assert r.status == 200, r
            assert found(c1, "RywDoc", {"run": delay_ms, "j": i}) == (200, [oid]), i
        elapsed = time.monotonic() - t0
        lag = metric(crud, "eskit_standby_fallbacks_total", 'reason="lag"') + \
            metric(second, "eskit_standby_fallbacks_total", 'reason="lag"') - lag0
    finally:
        pair.set_apply_delay(0)
    standby = metric(crud, "eskit_db_reads_total", 'on="standby"') + \
        metric(second, "eskit_db_reads_total", 'on="standby"')
    with capsys.disabled():
        print(f"\n[standby reads] CRUD _find, apply delay {delay_ms} ms: {n} creates and "
              f"patches, each followed by _find on both replicas that showed it, in "
              f"{elapsed:.1f}s; {standby:.0f} index reads on the standby; fallbacks to the "
              f"primary for lag {lag:.0f}; the standby's index was behind the primary's "
              f"{behind} times right after a write")
    assert standby > 0
    assert behind > 0  # the standby really was behind
    if reason == "primary":
        assert lag > 0  # past the wait, the primary answered


def test_paused_standby_fails_no_read(pair, services, capsys):
    db = pair.new_database()
    pair.set_apply_delay(0)
    es = start_es(pair, services, db)
    crud = start_crud(pair, services, es, pair.new_database())
    stop = threading.Event()
    lock = threading.Lock()
    problems, lat, acked = [], [], {}
    reads = [0]
    finds = [0]

    def crud_worker(t):
        c = Client(crud.url, timeout=30)
        i = 0
        while not stop.is_set():
            r = c.post("/v1/entities/PauseDoc", {"payload": {"t": t, "i": i}})
            if r.status != 201:
                with lock:
                    problems.append(f"CRUD create -> {r}")
                time.sleep(0.05)
                continue
            t0 = time.monotonic()
            st, ids = found(c, "PauseDoc", {"t": t, "i": i})
            with lock:
                lat.append(time.monotonic() - t0)
                finds[0] += 1
                if (st, ids) != (200, [r.json["originator"]["id"]]):
                    problems.append(f"_find of the document just created -> {st} {ids}")
            i += 1
            time.sleep(0.01)

    def worker(t):
        c = Client(es.url, timeout=30)
        oid = f"pause-{t}"
        version = 0
        while not stop.is_set():
            eid = str(uuid.uuid4())
            r = c.post("/v1/events", {"event_id": eid, "originator": {"id": oid},
                                      "event_type": "Pause.Done", "payload": {"t": t}})
            if r.status != 201:
                with lock:
                    problems.append(f"append -> {r}")
                time.sleep(0.05)
                continue
            version = r.json["event"]["originator"]["version"]
            with lock:
                acked[r.json["log_id"]] = eid
            for path, params in ((f"/v1/events/{oid}", {"from_version": version}),
                                 ("/v1/logs", {"from_id": r.json["log_id"], "size": 1})):
                t0 = time.monotonic()
                rr = c.get(path, params=params)
                dt = time.monotonic() - t0
                with lock:
                    lat.append(dt)
                    reads[0] += 1
                    if rr.status != 200:
                        problems.append(f"GET {path} -> {rr}")
                    elif not (rr.json.get("events") or rr.json.get("results")):
                        problems.append(f"GET {path} {params} did not show the write "
                                        f"just acknowledged: {rr}")
            time.sleep(0.01)

    seen = []

    def tail():
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", es.port, timeout=30)
        conn.request("GET", "/v1/logs/stream?from_id=1")
        resp = conn.getresponse()
        while True:
            line = resp.readline()
            if not line:
                problems.append("the SSE stream ended")
                return
            line = line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["id"])
                if stop.is_set() and seen[-1] >= target[0]:
                    conn.close()
                    return

    target = [1 << 62]
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=crud_worker, args=(t,)) for t in range(2)]
    sse = threading.Thread(target=tail)
    sse.start()
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        svcs = (es, crud)
        before = [metric(x, "eskit_db_reads_total", 'on="standby"') for x in svcs]
        pair.signal(signal.SIGSTOP)
        t_pause = time.monotonic()
        time.sleep(10)
        during = [metric(x, "eskit_db_reads_total", 'on="primary"') for x in svcs]
        pair.signal(signal.SIGCONT)
        time.sleep(3)
        after = [metric(x, "eskit_db_reads_total", 'on="standby"') for x in svcs]
        time.sleep(1)
        after2 = [metric(x, "eskit_db_reads_total", 'on="standby"') for x in svcs]
    finally:
        pair.signal(signal.SIGCONT)
        stop.set()
        for t in threads:
            t.join(60)
    head = Client(es.url).get("/v1/logs", params={"from_id": 1, "size": 1}).json["head_id"]
    target[0] = head
    sse.join(30)
    fallbacks = metric(es, "eskit_standby_fallbacks_total") + \
        metric(crud, "eskit_standby_fallbacks_total")
    lat.sort()
    with capsys.disabled():
        print(f"\n[standby reads] standby paused 10 s (from {t_pause:.0f}): {len(acked)} "
              f"appends, {reads[0]} reads, {finds[0]} CRUD creates each _found, {len(problems)} problems; read latency median "
              f"{lat[len(lat) // 2] * 1e3:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1e3:.0f} "
              f"ms, max {lat[-1] * 1e3:.0f} ms; fallbacks {fallbacks:.0f}; SSE saw "
              f"{len(seen)} entries")
    assert not problems, problems[:20]
    assert sorted(acked) == [x for x in seen if x in acked], "the SSE reader missed entries"
    assert all(a < b for a, b in zip(seen, seen[1:]))
    assert finds[0] > 0
    for name, b, d, a, a2 in zip(("event store", "CRUD store"), before, during, after, after2):
        assert b > 0 and d > 0, (name, b, d)
        assert a2 > a, f"the {name}'s reads did not go back to the standby after it resumed"
