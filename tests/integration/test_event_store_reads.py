"""Stream reads gathered into batches (README, "Reads in batches"): many
concurrent GET /v1/events/{id} with different streams and ranges, while
appends go on, are answered from one pipeline per batch. Each answer must be
exactly its own read: its stream, its range, its limit, nothing of a
neighbour's."""
import random
import sqlite3
import threading

import pytest

from eskit import Client, append_one_by_one, run_threads

STREAMS = 8


def check_batched_reads(es):
    c = Client(es.url)
    sizes = {}
    for k in range(STREAMS):
        n = k + 3
        r = c.post("/v1/events", {"events": [
            {"originator": {"id": f"r{k}"}, "event_type": "R.Happened", "payload": {"k": k, "v": v}}
            for v in range(1, n + 1)]})
        assert r.status == 201, r
        sizes[f"r{k}"] = n
    failures = []

    def reader(seed):
        rnd = random.Random(seed)
        rc = Client(es.url)
        for _ in range(60):
            oid = rnd.choice(list(sizes) + ["r-none"])
            n = sizes.get(oid, 0)
            frm, to, limit = rnd.randint(1, n + 2), rnd.randint(1, n + 3), rnd.randint(1, 12)
            r = rc.get(f"/v1/events/{oid}?from_version={frm}&to_version={to}&limit={limit}")
            want = [v for v in range(frm, min(to, n) + 1)][:limit]
            got = r.json and [(e["originator"]["id"], e["originator"]["version"], e["payload"])
                              for e in r.json.get("events", [])]
            expect = [(oid, v, {"k": int(oid[1:]), "v": v}) for v in want]
            if r.status != 200 or got != expect:
                failures.append(f"{oid} {frm}..{to} limit {limit}: {r.status} {r.body[:300]!r}")

    run_threads([(reader, s) for s in range(16)] +
                [(append_one_by_one, es.url, f"w{w}", 30, failures) for w in range(2)])
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    for w in range(2):
        assert [e["originator"]["version"] for e in c.get(f"/v1/events/w{w}").json["events"]] == \
            list(range(1, 31))


@pytest.mark.parametrize("loops", ["4", "0"], ids=["loops", "thread-per-connection"])
def test_concurrent_reads_each_get_their_own_answer(backend, services, loops):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend(), "ESKIT_HTTP_LOOPS": loops,
                                  "ESKIT_DB_POOL_SIZE": "2"})
    assert es.wait_ready(), es.log()
    check_batched_reads(es)


def test_long_streams_read_alone_and_whole(backend, services):
    """A stream read lately as long (128 events or more) is read alone, on a
    worker: its answers and the short reads around it stay whole."""
    es = services("event-store", {"ESKIT_DATABASE_URL": backend(), "ESKIT_DB_POOL_SIZE": "4"})
    assert es.wait_ready(), es.log()
    c = Client(es.url)
    long_n = 300
    r = c.post("/v1/events", {"events": [
        {"originator": {"id": "long"}, "event_type": "L.Happened", "payload": {"v": v}}
        for v in range(1, long_n + 1)]})
    assert r.status == 201, r
    assert c.post("/v1/events", {"originator": {"id": "short"}, "event_type": "S.Happened",
                                 "payload": {"v": 1}}).status == 201
    failures = []

    def reader(seed):
        rnd = random.Random(seed)
        rc = Client(es.url)
        for _ in range(40):
            if rnd.random() < 0.3:
                frm = rnd.randint(1, long_n)
                r = rc.get(f"/v1/events/long?from_version={frm}")
                ok = r.status == 200 and [e["payload"]["v"] for e in r.json["events"]] == \
                    list(range(frm, long_n + 1))
            else:
                r = rc.get("/v1/events/short")
                ok = r.status == 200 and [e["payload"]["v"] for e in r.json["events"]] == [1]
            if not ok:
                failures.append(f"{r.status} {r.body[:200]!r}")

    run_threads([(reader, s) for s in range(12)])
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"


# A view in place of the events table fails every read of the stream "boom"
# at run time (for its rows only), slows down reads of "slow" (so that the
# reads around them queue up into batches) and changes nothing else. On
# PostgreSQL it stays insertable, so that a new connection prepares every
# statement.
BOOM_PG = """ALTER TABLE es_events RENAME TO es_events_t;
CREATE VIEW es_events AS SELECT * FROM es_events_t WHERE CASE originator_id
  WHEN 'boom' THEN 1 / (length(originator_id) - 4) = 0
  WHEN 'slow' THEN pg_sleep(%s) IS NOT NULL ELSE true END;"""
BOOM_SQLITE = """ALTER TABLE es_events RENAME TO es_events_t;
CREATE VIEW es_events AS SELECT * FROM es_events_t WHERE CASE originator_id
  WHEN 'boom' THEN json('not json') IS NOT NULL
  WHEN 'slow' THEN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
                    WHERE x < 100000) SELECT count(*) FROM c) > 0 ELSE 1 END;"""


def boom_store(backend, services, request, sleep="0.004", pool="2"):
    """An event store whose streams boom, slow and fine hold 3 events each,
    behind the view above."""
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url, "ESKIT_DB_POOL_SIZE": pool})
    assert es.wait_ready(), es.log()
    c = Client(es.url)
    for oid in ("boom", "slow", "fine"):
        assert c.post("/v1/events", {"events": [
            {"originator": {"id": oid}, "event_type": "B.Happened", "payload": {"v": v}}
            for v in range(1, 4)]}).status == 201
    # opens the pool's connections while they still can
    run_threads([(lambda: Client(es.url).get("/v1/events/fine"),)] * 8)
    if backend.kind == "pg":
        request.getfixturevalue("pg").psql(BOOM_PG % sleep, db=url.rsplit("/", 1)[1])
    else:
        db = sqlite3.connect(url[len("sqlite:"):], isolation_level=None, timeout=5)
        db.executescript(BOOM_SQLITE)
        db.close()
    return es


def read_concurrently(es, readers, rounds):
    """readers: {stream: threads}. Returns {stream: {status: count}}."""
    counts = {oid: {} for oid in readers}
    lock = threading.Lock()

    def reader(oid):
        rc = Client(es.url)
        for _ in range(rounds):
            status = rc.get(f"/v1/events/{oid}").status
            with lock:
                counts[oid][status] = counts[oid].get(status, 0) + 1

    run_threads([(reader, oid) for oid, n in readers.items() for _ in range(n)])
    return counts


def full_log(es):
    with open(es.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def test_a_failing_read_fails_alone(backend, services, request):
    """One read that fails in the database aborts the pipeline of its batch;
    the batch then runs again one read at a time, so that its neighbours
    still get their answers and only the failing read gets its 500."""
    es = boom_store(backend, services, request)
    assert Client(es.url).get("/v1/events/boom").status == 500
    counts = read_concurrently(es, {"boom": 3, "slow": 2, "fine": 8}, 40)
    assert counts == {"boom": {500: 120}, "slow": {200: 80}, "fine": {200: 320}}, counts
    assert "each read again alone" in full_log(es), "no batch held a failing read"


def test_a_timed_out_read_fails_alone(pg, services, request):
    """A statement time-out (503, the connection stays up) in a batch fails
    only the read that took too long."""
    class Backend:
        kind = "pg"

        def __call__(self):
            url = pg.new_database()
            pg.psql(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET statement_timeout = '200ms'")
            return url
    es = boom_store(Backend(), services, request, sleep="0.1")
    counts = read_concurrently(es, {"slow": 2, "fine": 8}, 10)
    assert counts == {"slow": {503: 20}, "fine": {200: 80}}, counts
