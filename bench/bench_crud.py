"""The CRUD store's benchmarks (make bench): reads that do not grow with the
history, list pages that do not grow with the store, and document reads next
to pgbench selecting a document by key from a plain jsonb table."""
import statistics

from eskit import Client, Service
from benchlib import ROUNDS, compare_stats, pgbench_stats, wrk, wrk_stats

DOCS = 1000


def _stack(cluster, services):
    """An event store on a fresh database and a CRUD store on it."""
    url = cluster.new_database()
    es = Service("event-store", {"ESKIT_DATABASE_URL": url, "ESKIT_LOG_LEVEL": "warn",
                                 "ESKIT_MAX_BODY_BYTES": "4194304"}).start()
    services.append(es)
    assert es.wait_ready(), es.log()
    crud = Service("crud-store", {"ESKIT_EVENT_STORE_URL": es.url,
                                  "ESKIT_LOG_LEVEL": "warn"}).start()
    services.append(crud)
    assert crud.wait_ready(), crud.log()
    return url, es, crud


def _append(es, events):
    c = Client(es.url)
    for i in range(0, len(events), 1000):
        r = c.post("/v1/events", {"events": events[i:i + 1000]})
        assert r.status == 201, r


def _ratio_line(label, a, b, target):
    print(f"  {label:<44} {a:>10.0f}/s vs {b:>10.0f}/s   ratio {a / b if b else 0:5.2f}  "
          f"({target})")


def run(cluster, services, wanted=lambda part: True):
    dbname_url, es, crud = _stack(cluster, services)
    dbname = dbname_url.rsplit("/", 1)[1]
    if wanted("crud-history"):
        _history(es, crud)
    if wanted("crud-get"):
        _get_vs_jsonb(cluster, dbname, es, crud)
    if wanted("crud-list"):
        _list(cluster, services)
    return crud


def _history(es, crud):
    """A document with 1 version and one with 10,000 (written as events)."""
    _append(es, [{"originator": {"id": "short"}, "event_type": "Bench.Created",
                  "payload": {"n": 0, "name": "short"}}])
    long_events = [{"originator": {"id": "long"}, "event_type": "Bench.Created",
                    "payload": {"n": 0, "name": "long"}}]
    long_events += [{"originator": {"id": "long"}, "event_type": "Bench.Updated",
                     "payload": {"n": i}} for i in range(1, 10000)]
    _append(es, long_events)
    c = Client(crud.url)
    assert c.get("/v1/entities/Bench/long").json["originator"]["version"] == 10000
    print("CRUD store: GET of a document, 1 version vs 10,000 versions, 8 connections:")
    one, many = [], []
    for _ in range(ROUNDS):
        one.append(wrk(crud.url, None, 8, "/v1/entities/Bench/short"))
        many.append(wrk(crud.url, None, 8, "/v1/entities/Bench/long"))
    a, b = statistics.median(one), statistics.median(many)
    _ratio_line("1 version / 10,000 versions", a, b, "target <= 1.5")


def _get_vs_jsonb(cluster, dbname, es, crud):
    """Document reads next to a plain jsonb table."""
    _append(es, [{"originator": {"id": f"doc{i}"}, "event_type": "Doc.Created",
                  "payload": {"i": i, "email": f"user{i}@example.com", "tags": ["a", "b"]}}
                 for i in range(1, DOCS + 1)])
    cluster.psql("CREATE TABLE IF NOT EXISTS bench_docs (id text PRIMARY KEY, doc jsonb NOT NULL);"
                 "INSERT INTO bench_docs SELECT 'doc' || i, jsonb_build_object('i', i, 'email', "
                 "'user' || i || '@example.com', 'tags', jsonb_build_array('a', 'b')) "
                 f"FROM generate_series(1, {DOCS}) i ON CONFLICT DO NOTHING", db=dbname)
    select = (f"\\set k random(1, {DOCS})\n"
              "SELECT doc FROM bench_docs WHERE id = 'doc' || :k;\n")
    env = {"ESKIT_BENCH_PREFIX": "/v1/entities/Doc/doc", "ESKIT_BENCH_KEYS": str(DOCS)}
    wrk(crud.url, "get_random.lua", 32, "/", env=env, seconds=2)  # warm the cache
    print("CRUD store: GET /v1/entities/{type}/{id} vs pgbench selecting a jsonb document by key:")
    compare_stats("32 connections, 1,000 documents (target: eskit p99 <= 3x its p50)",
                  lambda: wrk_stats(crud.url, "get_random.lua", 32, "/", env=env),
                  lambda: pgbench_stats(cluster, dbname, select, 32))



def _list(cluster, services):
    """A list page in an empty store and among 100,000 events of other types."""
    _, _, crud_empty = _stack(cluster, services)
    _, es_full, crud_full = _stack(cluster, services)
    for stack_crud in (crud_empty, crud_full):
        cc = Client(stack_crud.url)
        for i in range(20):
            assert cc.post("/v1/entities/Item", {"payload": {"i": i}}).status == 201
    _append(es_full, [{"originator": {"id": f"o{i}"}, "event_type": f"Other{i % 10}.Happened",
                       "payload": {"i": i}} for i in range(100000)])
    print("CRUD store: a list page (limit 10), empty store vs 100,000 events of other types:")
    empty, full = [], []
    for _ in range(ROUNDS):
        empty.append(wrk(crud_empty.url, None, 8, "/v1/entities/Item?limit=10"))
        full.append(wrk(crud_full.url, None, 8, "/v1/entities/Item?limit=10"))
    _ratio_line("empty / 100,000 other events", statistics.median(empty),
                statistics.median(full), "target <= 2")
