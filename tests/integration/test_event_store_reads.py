"""Stream reads gathered into batches (README, "Reads in batches"): many
concurrent GET /v1/events/{id} with different streams and ranges, while
appends go on, are answered from one pipeline per batch. Each answer must be
exactly its own read: its stream, its range, its limit, nothing of a
neighbour's."""
import random
import sqlite3
import threading

import pytest

from eskit import Client

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

    def writer(w):
        wc = Client(es.url)
        for i in range(30):
            r = wc.post("/v1/events", {"originator": {"id": f"w{w}"}, "event_type": "W.Happened",
                                       "payload": {"i": i}})
            if r.status != 201:
                failures.append(f"append: {r.status} {r.body[:200]!r}")

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(16)]
    threads += [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
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

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"


# A view in place of the events table fails every read of the stream "boom"
# (at run time, for its rows only) and no other statement: on PostgreSQL it
# stays insertable, so that even a new connection prepares every statement.
BOOM_PG = """ALTER TABLE es_events RENAME TO es_events_t;
CREATE VIEW es_events AS SELECT * FROM es_events_t WHERE
  CASE WHEN originator_id = 'boom' THEN 1 / (length(originator_id) - 4) = 0 ELSE true END;"""
BOOM_SQLITE = """ALTER TABLE es_events RENAME TO es_events_t;
CREATE VIEW es_events AS SELECT * FROM es_events_t WHERE
  CASE WHEN originator_id = 'boom' THEN json('not json') IS NOT NULL ELSE 1 END;"""


def test_a_failing_read_fails_alone(backend, services, request):
    """One read that fails in the database aborts the pipeline of its batch;
    the batch then runs again one read at a time, so that its neighbours
    still get their answers and only the failing read gets its 500."""
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url, "ESKIT_DB_POOL_SIZE": "2"})
    assert es.wait_ready(), es.log()
    c = Client(es.url)
    for oid in ("boom", "fine"):
        assert c.post("/v1/events", {"events": [
            {"originator": {"id": oid}, "event_type": "B.Happened", "payload": {"v": v}}
            for v in range(1, 4)]}).status == 201
    warm = [threading.Thread(target=lambda: Client(es.url).get("/v1/events/fine"))
            for _ in range(8)]  # opens the pool's connections while they still can
    [t.start() for t in warm]
    [t.join() for t in warm]
    if backend.kind == "pg":
        request.getfixturevalue("pg").psql(BOOM_PG, db=url.rsplit("/", 1)[1])
    else:
        db = sqlite3.connect(url[len("sqlite:"):], isolation_level=None, timeout=5)
        db.executescript(BOOM_SQLITE)
        db.close()
    assert c.get("/v1/events/boom").status == 500
    counts = {"fine": {}, "boom": {}}
    lock = threading.Lock()

    def reader(oid):
        rc = Client(es.url)
        for _ in range(60):
            status = rc.get(f"/v1/events/{oid}").status
            with lock:
                counts[oid][status] = counts[oid].get(status, 0) + 1

    threads = [threading.Thread(target=reader, args=("boom" if n < 3 else "fine",))
               for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert counts == {"fine": {200: 540}, "boom": {500: 180}}, counts
