"""The query index's benchmarks (make bench, section `query`; issue 14):
a selective indexed _find next to pgbench running the same query on a plain
jsonb table with the same expression index, _bulk of 100 creates against
single creates, and the index's lag behind writes (from the append's 201 to
the CRUD store's eskit_crud_index_log_id gauge passing its log id, at 1,000
writes/s from several processes). ESKIT_BENCH_QUERY_DOCS sets the number of
documents (default 100,000, about 10 per city value).

ESKIT_BENCH_QUERY_SCALE=N (opt-in: it loads N more documents, minutes for a
million) adds a second type of N documents of which the same DOCS match the
queried city values as in the first (the others have other values), and
compares the same query over both types, alternating: the cost should follow
the results, not the collection. pgbench does the same over two plain
tables."""
import multiprocessing
import os
import re
import statistics
import time

from eskit import Client, Service
from benchlib import ROUNDS, compare_stats, pgbench_stats, wrk_stats

DOCS = int(os.environ.get("ESKIT_BENCH_QUERY_DOCS", "100000"))
SCALE = int(os.environ.get("ESKIT_BENCH_QUERY_SCALE", "0"))
LAG_RATE = int(os.environ.get("ESKIT_BENCH_LAG_RATE", "1000"))
LAG_SECONDS = float(os.environ.get("ESKIT_BENCH_LAG_SECONDS", "10"))
LAG_WRITERS = int(os.environ.get("ESKIT_BENCH_LAG_WRITERS", "8"))


def _load(es, n, etype="Q", cities=None, matching=None):
    """Appends n T.Created events; document i has city c<i % cities> for the
    first `matching` (default all), x<i % cities> after."""
    c = Client(es.url, timeout=300)
    cities = cities or max(1, n // 10)
    matching = n if matching is None else matching
    prefix = etype.lower()
    for start in range(0, n, 1000):
        evs = [{"originator": {"id": f"{prefix}{i}"}, "event_type": f"{etype}.Created",
                "payload": {"i": i, "city": f"{'c' if i < matching else 'x'}{i % cities}",
                            "age": i % 90}}
               for i in range(start, min(n, start + 1000))]
        r = c.post("/v1/events", {"events": evs})
        assert r.status == 201, r
    return cities


def _caught_up(crud, es, etype="Q"):
    """Waits for the index to hold everything (its gauge at the log's head:
    a large backlog is not left to one query's barrier) and the declared
    index to be ready."""
    c = Client(crud.url, timeout=900)
    head = Client(es.url).get("/v1/logs?from_id=1&size=1&skip_payload=true").json["head_id"]
    gauge = re.compile(r"^eskit_crud_index_log_id (\S+)$", re.M)
    t0 = time.time()
    while True:
        m = gauge.search(c.get("/metrics").body)
        if m and float(m.group(1)) >= head:
            break
        time.sleep(0.5)
    while True:
        r = c.post(f"/v1/entities/{etype}/_find", {"selector": {"city": "c1"}})
        assert r.status == 200, r
        if r.json["index"] == "by_city":
            return time.time() - t0
        time.sleep(0.5)


def _register(crud, etype):
    r = Client(crud.url).post("/v1/types", {"spec": {"entity_type": etype, "indexes": [
        {"name": "by_city", "fields": ["city"]}]}})
    assert r.status == 201, r


def _plain_table(cluster, dbname, table, n, cities, matching):
    cluster.psql(f"CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, doc jsonb NOT NULL);"
                 f"INSERT INTO {table} SELECT 'q' || i, jsonb_build_object('i', i, 'city', "
                 f"CASE WHEN i < {matching} THEN 'c' ELSE 'x' END || (i % {cities}), 'age', "
                 f"i % 90) FROM generate_series(0, {n - 1}) i ON CONFLICT DO NOTHING;"
                 f"CREATE INDEX IF NOT EXISTS {table}_city ON {table} ((doc #> '{{city}}'));"
                 f"ANALYZE {table};", db=dbname)


def _select(table, cities):
    return (f"\\set k random(0, {cities - 1})\n"
            f"SELECT doc FROM {table} WHERE doc #> '{{city}}' = to_jsonb('c' || :k) LIMIT 100;\n")


def _find(crud, etype, cities):
    return lambda: wrk_stats(crud.url, "find.lua", 8, f"/v1/entities/{etype}/_find",
                             env={"FIND_CITIES": str(cities), "FIND_TYPE": etype})


def _bulk(crud):
    """_bulk of 100 creates against single creates, one connection."""
    c = Client(crud.url)
    singles, bulks, s_lat, b_lat = [], [], [], []
    for _ in range(ROUNDS):
        t = time.time()
        for i in range(500):
            t1 = time.time()
            assert c.post("/v1/entities/W", {"payload": {"i": i}}, keep=True).status == 201
            s_lat.append((time.time() - t1) * 1000)
        singles.append(500 / (time.time() - t))
        t = time.time()
        for _ in range(10):
            t1 = time.time()
            r = c.post("/v1/entities/W/_bulk",
                       {"operations": [{"op": "create", "payload": {"i": i}} for i in range(100)]},
                       keep=True)
            assert r.status == 200, r
            b_lat.append((time.time() - t1) * 1000)
        bulks.append(1000 / (time.time() - t))
    a, b = statistics.median(bulks), statistics.median(singles)
    s_lat.sort()
    b_lat.sort()

    def pct(v, p):
        return v[min(len(v) - 1, int(len(v) * p))]

    print("_bulk of 100 creates vs single creates, one connection:")
    print(f"  {'documents/s, _bulk / single':<44} ratio {a / b:5.2f}x")
    print(f"    {'_bulk (100 creates)':<20} {a:>10.0f} documents/s   request p50 "
          f"{pct(b_lat, 0.5):7.2f} ms   p99 {pct(b_lat, 0.99):7.2f} ms")
    print(f"    {'single creates':<20} {b:>10.0f} documents/s   request p50 "
          f"{pct(s_lat, 0.5):7.2f} ms   p99 {pct(s_lat, 0.99):7.2f} ms")


def run(cluster, services):
    es_url, ix_url = cluster.new_database(), cluster.new_database()
    es = Service("event-store", {"ESKIT_DATABASE_URL": es_url, "ESKIT_LOG_LEVEL": "warn",
                                 "ESKIT_MAX_BODY_BYTES": "4194304"}).start()
    services.append(es)
    assert es.wait_ready(), es.log()
    crud = Service("crud-store", {"ESKIT_EVENT_STORE_URL": es.url, "ESKIT_DATABASE_URL": ix_url,
                                  "ESKIT_LOG_LEVEL": "warn"}).start()
    services.append(crud)
    assert crud.wait_ready(), crud.log()
    t0 = time.time()
    cities = _load(es, DOCS)
    loaded = time.time() - t0
    _register(crud, "Q")
    waited = _caught_up(crud, es)
    print(f"query index: {DOCS} documents appended in {loaded:.1f}s; indexed and by_city "
          f"ready {waited:.1f}s later ({DOCS / (loaded + waited):.0f} documents/s end to end)")

    dbname = ix_url.rsplit("/", 1)[1]
    _plain_table(cluster, dbname, "bench_q", DOCS, cities, DOCS)
    cluster.psql("ANALYZE crud_docs;", db=dbname)
    print(f"selective indexed _find (about {DOCS // cities} results) vs pgbench, 8 connections:")
    compare_stats("POST /v1/entities/Q/_find (target >= 0.5x)", _find(crud, "Q", cities),
                  lambda: pgbench_stats(cluster, dbname, _select("bench_q", cities), 8))

    if SCALE:
        t0 = time.time()
        _load(es, SCALE, "R", cities, DOCS)
        loaded = time.time() - t0
        _register(crud, "R")
        waited = _caught_up(crud, es, "R")
        print(f"query index: {SCALE} more documents (type R) appended in {loaded:.1f}s; "
              f"indexed and by_city ready {waited:.1f}s later")
        _plain_table(cluster, dbname, "bench_r", SCALE, cities, DOCS)
        cluster.psql("ANALYZE crud_docs;", db=dbname)
        print(f"the same _find over {SCALE} documents (type R) vs over {DOCS} (type Q), "
              f"{DOCS // cities} results each, 8 connections (target: {DOCS} / {SCALE} "
              f"<= 1.5x):")
        compare_stats(f"_find, {DOCS} / {SCALE} documents", _find(crud, "Q", cities),
                      _find(crud, "R", cities), names=(f"Q ({DOCS})", f"R ({SCALE})"))
        compare_stats(f"pgbench, {DOCS} / {SCALE} rows",
                      lambda: pgbench_stats(cluster, dbname, _select("bench_q", cities), 8),
                      lambda: pgbench_stats(cluster, dbname, _select("bench_r", cities), 8),
                      names=(f"bench_q ({DOCS})", f"bench_r ({SCALE})"))

    _bulk(crud)
    _lag(es, crud)


def _lag_writer(url, k, per_s, seconds, out):
    """One writer process: appends at per_s writes/s on one keep-alive
    connection, paced by the clock; puts its (log_id, time of the 201) list."""
    c = Client(url)
    acks = []
    t0 = time.time()
    n = 0
    while True:
        t_next = t0 + n / per_s
        now = time.time()
        if now - t0 >= seconds:
            break
        if t_next > now:
            time.sleep(t_next - now)
        r = c.post("/v1/events", {"originator": {"id": f"lag-{k}-{n}"},
                                  "event_type": "L.Created", "payload": {"n": n}}, keep=True)
        if r.status == 201:
            acks.append((r.json["log_id"], time.time()))
        n += 1
    out.put(("acks", acks))


def _lag_poller(url, seconds, out, every=0.001):
    """Reads the index's log id from /metrics every `every` seconds (faster
    polls would take the CPU the follower needs: the measure would move what
    it measures)."""
    c = Client(url)
    gauge = re.compile(r"^eskit_crud_index_log_id (\S+)$", re.M)
    seen = []
    t_end = time.time() + seconds
    while time.time() < t_end:
        m = gauge.search(c.get("/metrics", keep=True).body)
        if m:
            seen.append((float(m.group(1)), time.time()))
        time.sleep(every)
    out.put(("seen", seen))


def _lag_reader(url, seconds, out):
    """The baseline: a plain reader long-polling the log, as the index's
    follower does; notes when each entry reached it."""
    c = Client(url, timeout=30)
    page = c.get("/v1/logs?from_id=1&size=1&skip_payload=true").json
    from_id = page["head_id"] + 1
    seen = {}
    t_end = time.time() + seconds
    while time.time() < t_end:
        page = c.get(f"/v1/logs?from_id={from_id}&size=1000&wait=1&skip_payload=true",
                     keep=True).json
        now = time.time()
        for r in page["results"]:
            seen[r["id"]] = now
        from_id = page["next_from_id"]
    out.put(("read", seen))


def _lag(es, crud, rate=LAG_RATE, seconds=LAG_SECONDS, writers=LAG_WRITERS):
    """Appends at `rate` writes/s from `writers` processes (one Python thread
    cannot reach 1,000/s here); a poller process reads the index's log id
    from /metrics; lag = first poll past a write's log id - its 201. The
    baseline, in the same run: a plain long-polling reader of the log (the
    event store's own delivery, which the index's follower also waits for)."""
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_lag_poller, args=(crud.url, seconds + 1.0, q)),
             multiprocessing.Process(target=_lag_reader, args=(es.url, seconds + 1.0, q))]
    time.sleep(0.2)
    procs += [multiprocessing.Process(target=_lag_writer,
                                      args=(es.url, k, rate / writers, seconds, q))
              for k in range(writers)]
    for p in procs[:2]:
        p.start()
    time.sleep(0.5)  # the reader has read the head before the first write
    for p in procs[2:]:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    seen = sorted(s for kind, r in results if kind == "seen" for s in r)
    read = {k: v for kind, r in results if kind == "read" for k, v in r.items()}
    acks = sorted(a for kind, r in results if kind == "acks" for a in r)
    lags, base, j = [], [], 0
    for log_id, t_ack in acks:
        while j < len(seen) and seen[j][0] < log_id:
            j += 1
        if j < len(seen) and log_id in read:
            lags.append(max(0.0, seen[j][1] - t_ack) * 1000)
            base.append(max(0.0, read[log_id] - t_ack) * 1000)
    if not lags:
        print("  index lag: no measurement")
        return

    def pct(v, p):
        v = sorted(v)
        return v[min(len(v) - 1, int(len(v) * p))]

    print(f"index lag behind {len(acks) / seconds:.0f} appends/s reached ({rate} asked, "
          f"{writers} writer processes; from the 201 to the index holding it, /metrics polled "
          f"{len(seen) / (seconds + 1.0):.0f}/s), vs a plain long-polling log reader:")
    print(f"  {'p99 index / p99 log reader':<44} ratio {pct(lags, 0.99) / max(pct(base, 0.99), 0.001):5.2f}x"
          f"   (target: index p99 < 50 ms)")
    print(f"    {'query index':<20} p50 {pct(lags, 0.5):7.1f} ms   p99 {pct(lags, 0.99):7.1f} ms")
    print(f"    {'log reader':<20} p50 {pct(base, 0.5):7.1f} ms   p99 {pct(base, 0.99):7.1f} ms")
