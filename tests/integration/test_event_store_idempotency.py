"""Event ids, metadata, recorded_at and idempotent appends (SPEC §3), on both
back ends: a resend of a stored append answers 200 with the original answer
and writes nothing; partial overlap and changed content are 409 naming the
id; concurrent resends write once; the answer survives SIGKILL and restart,
and holds through a second replica on PostgreSQL."""
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from eskit import run_threads


def ev(oid, i, event_id=None, version=None, **extra):
    e = {"originator": {"id": oid}, "event_type": "Order.Placed", "payload": {"i": i}}
    if version is not None:
        e["originator"]["version"] = version
    if event_id:
        e["event_id"] = event_id
    e.update(extra)
    return e


def log_ids(c):
    r = c.get("/v1/logs", params={"from_id": 1, "size": 1000})
    assert r.status == 200, r
    return [x["id"] for x in r.json["results"]]


def test_new_fields_round_trip(event_store):
    c = event_store.client()
    eid = str(uuid.uuid4()).upper()
    meta = {"correlation_id": "req-81", "n": [1, 2, {"x": None}]}
    r = c.post("/v1/events", ev("o1", 1, event_id=eid, metadata=meta))
    assert r.status == 201, r
    out = r.json["event"]
    assert out["event_id"] == eid.lower()
    assert out["metadata"] == meta
    assert out["recorded_at"].endswith("Z") and len(out["recorded_at"]) == 24
    # every read path carries them
    s = c.get("/v1/events/o1").json["events"][0]
    lg = c.get("/v1/logs").json["results"][0]["event"]
    for got in (s, lg):
        assert got["event_id"] == eid.lower()
        assert got["metadata"] == meta
        assert got["recorded_at"] == out["recorded_at"]
    # an event without them has no event_id nor metadata, but a recorded_at
    r = c.post("/v1/events", ev("o1", 2))
    assert r.status == 201
    assert "event_id" not in r.json["event"] and "metadata" not in r.json["event"]
    second = c.get("/v1/events/o1").json["events"][1]
    assert "event_id" not in second and "metadata" not in second
    assert second["recorded_at"] >= out["recorded_at"]


def test_recorded_at_never_decreases_along_the_log(event_store):
    c = event_store.client()
    # clients may set occurred_on to anything; recorded_at is the server's
    body = {"events": [ev(f"s{i}", i, occurred_on="2001-01-01T00:00:00.000Z")
                       for i in range(5)]}
    assert c.post("/v1/events", body).status == 201
    failures = []

    def write(k):
        cl = event_store.client()
        for j in range(20):
            if cl.post("/v1/events", ev(f"t{k}", j)).status != 201:
                failures.append(k)

    run_threads([(write, k) for k in range(4)])
    assert not failures
    r = c.get("/v1/logs", params={"size": 1000})
    stamps = [x["event"]["recorded_at"] for x in r.json["results"]]
    assert len(stamps) == 85
    assert stamps == sorted(stamps)
    assert stamps[0] > "2026"


def test_single_resend_returns_the_original_answer(event_store):
    c = event_store.client()
    eid = str(uuid.uuid4())
    first = c.post("/v1/events", ev("a1", 1, event_id=eid))
    assert first.status == 201
    again = c.post("/v1/events", ev("a1", 1, event_id=eid))
    assert again.status == 200, again
    assert again.json == first.json
    # the same with the version the first append got, and with the
    # payload's members in another order (JSON-equal)
    e = ev("a1", 1, event_id=eid, version=1)
    assert c.post("/v1/events", e).json == first.json
    assert log_ids(c) == [first.json["log_id"]]
    assert c.get("/v1/streams/a1").json["version"] == 1


def test_batch_resend_returns_the_original_answer(event_store):
    c = event_store.client()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    body = {"events": [ev("b1" if k < 3 else "b2", k, event_id=ids[k]) for k in range(5)]}
    first = c.post("/v1/events", body)
    assert first.status == 201, first
    for _ in range(3):
        again = c.post("/v1/events", body)
        assert again.status == 200, again
        assert again.json == first.json
    assert len(log_ids(c)) == 5


def test_partial_overlap_and_changed_content_are_conflicts(event_store):
    c = event_store.client()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    assert c.post("/v1/events", {"events": [ev("p1", 0, event_id=ids[0]),
                                            ev("p1", 1, event_id=ids[1])]}).status == 201
    before = log_ids(c)
    # one stored, one not
    r = c.post("/v1/events", {"events": [ev("p1", 0, event_id=ids[0]),
                                         ev("p1", 9, event_id=ids[2])]})
    assert r.status == 409, r
    assert r.json["error"]["details"]["event_id"] == ids[0]
    # a stored id and an event without id
    r = c.post("/v1/events", {"events": [ev("p1", 0, event_id=ids[0]), ev("p1", 9)]})
    assert r.status == 409 and r.json["error"]["details"]["event_id"] == ids[0]
    # the same id with another payload, another stream, another type, other
    # metadata, another version
    changed = [
        ev("p1", 99, event_id=ids[1]),
        ev("other", 1, event_id=ids[1]),
        dict(ev("p1", 1, event_id=ids[1]), event_type="Order.Paid"),
        ev("p1", 1, event_id=ids[1], metadata={"k": 1}),
        ev("p1", 1, event_id=ids[1], version=7),
    ]
    for body in changed:
        r = c.post("/v1/events", body)
        assert r.status == 409, (body, r)
        assert r.json["error"]["code"] == "conflict"
        assert r.json["error"]["details"]["event_id"] == ids[1]
    # the first mismatched id is named, before a merely stored one
    r = c.post("/v1/events", {"events": [ev("p1", 0, event_id=ids[0]),
                                         ev("p1", 5, event_id=ids[1])]})
    assert r.status == 409 and r.json["error"]["details"]["event_id"] == ids[1]
    assert log_ids(c) == before
    # an id that is stored cannot be reused in a fresh stream either
    r = c.post("/v1/events", ev("fresh", 0, event_id=ids[0]))
    assert r.status == 409


def test_resend_of_an_append_whose_version_has_passed(event_store):
    """The retry of an append with a version finds the stream past that
    version (its own commit moved it): still the original answer, not 409."""
    c = event_store.client()
    eid = str(uuid.uuid4())
    first = c.post("/v1/events", ev("v1", 0, event_id=eid, version=1))
    assert first.status == 201
    assert c.post("/v1/events", ev("v1", 1, version=2)).status == 201
    for _ in range(2):  # the second try finds the committer's memory warm
        again = c.post("/v1/events", ev("v1", 0, event_id=eid, version=1))
        assert again.status == 200, again
        assert again.json == first.json


def test_concurrent_resends_write_once(event_store):
    c = event_store.client()
    ids = [str(uuid.uuid4()) for _ in range(10)]
    body = {"events": [ev(f"c{k % 3}", k, event_id=ids[k]) for k in range(10)]}
    answers = []
    lock = threading.Lock()

    def send():
        r = event_store.client().post("/v1/events", body)
        with lock:
            answers.append(r)

    run_threads([(send,) for _ in range(16)])
    assert len(answers) == 16
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] * 15 + [201], statuses
    assert all(r.json == answers[0].json for r in answers)
    assert len(log_ids(c)) == 10
    versions = {s: c.get(f"/v1/streams/c{s}").json["version"] for s in range(3)}
    assert versions == {0: 4, 1: 3, 2: 3}


def test_concurrent_resends_of_single_appends(event_store):
    """Many single appends, each sent by 4 clients at once: every one is
    written once, and all its answers agree."""
    eids = [str(uuid.uuid4()) for _ in range(30)]
    answers = {e: [] for e in eids}
    lock = threading.Lock()

    def send(k):
        cl = event_store.client()
        for i, e in enumerate(eids):
            r = cl.post("/v1/events", ev("one", i, event_id=e))
            with lock:
                answers[e].append(r)

    run_threads([(send, k) for k in range(4)])
    c = event_store.client()
    assert len(log_ids(c)) == 30
    for e, rs in answers.items():
        assert sorted(r.status for r in rs) == [200, 200, 200, 201], e
        assert all(r.json == rs[0].json for r in rs)


def test_resend_after_sigkill_and_restart(backend, services):
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    body = {"events": [ev("k1", k, event_id=ids[k], metadata={"try": 1}) for k in range(3)]}
    first = es.client().post("/v1/events", body)
    assert first.status == 201
    es.kill9()
    es2 = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es2.wait_ready()
    again = es2.client().post("/v1/events", body)
    assert again.status == 200, again
    assert again.json == first.json
    assert len(log_ids(es2.client())) == 3


def test_resend_through_a_second_replica(pg, services):
    url = pg.new_database()
    a = services("event-store", {"ESKIT_DATABASE_URL": url})
    b = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert a.wait_ready() and b.wait_ready()
    eid = str(uuid.uuid4())
    first = a.client().post("/v1/events", ev("r1", 1, event_id=eid, version=1))
    assert first.status == 201
    again = b.client().post("/v1/events", ev("r1", 1, event_id=eid, version=1))
    assert again.status == 200, again
    assert again.json == first.json
    # concurrent resends through both replicas write once
    ids = [str(uuid.uuid4()) for _ in range(4)]
    body = {"events": [ev("r2", k, event_id=ids[k]) for k in range(4)]}
    answers = []
    lock = threading.Lock()

    def send(svc):
        r = svc.client().post("/v1/events", body)
        with lock:
            answers.append(r)

    run_threads([(send, a if k % 2 else b) for k in range(12)])
    assert sorted(r.status for r in answers) == [200] * 11 + [201]
    assert all(r.json == answers[0].json for r in answers)
    assert len(log_ids(a.client())) == 5


SCHEMA = Path(__file__).resolve().parents[2] / "services" / "event-store" / "schema"


def make_old_database(kind, url, pg):
    """A database as the event store left it before event ids: the schema of
    the earlier migrations, recorded as applied, with three events written
    the old way (occurred_on set by clients, out of order along log ids)."""
    files = sorted((SCHEMA / kind).glob("*.sql"))
    first_new = min(int(f.name[:4]) for f in files if "event-ids" in f.name)
    old = [f for f in files if int(f.name[:4]) < first_new]
    rows = [(1, "old1", 1, 1700000000000), (2, "old1", 2, 1600000000000),
            (3, "old2", 1, 1800000000000)]
    if kind == "sqlite":
        path = url[len("sqlite:"):]
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE eskit_schema_migrations (service TEXT NOT NULL, version "
                    "INTEGER NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (service, version))")
        for f in old:
            con.executescript(f.read_text())
            con.execute("INSERT INTO eskit_schema_migrations VALUES (?, ?, 'x')",
                        ("eskit-event-store", int(f.name[:4])))
        for log_id, oid, v, t in rows:
            con.execute("INSERT INTO es_events VALUES (?, ?, ?, 'Old.Made', 'Old', 'Made', "
                        "'{\"v\": 1}', ?)", (log_id, oid, v, t))
        con.execute("INSERT INTO es_streams VALUES ('old1', 'Old', 2, 'Old.Made', 1, 2), "
                    "('old2', 'Old', 1, 'Old.Made', 3, 3)")
        con.commit()
        con.close()
        return
    dbname = url.rsplit("/", 1)[1]
    pg.psql("CREATE TABLE eskit_schema_migrations (service text NOT NULL, version integer "
            "NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (service, version))", db=dbname)
    for f in old:
        pg.psql(f.read_text(), db=dbname)
        pg.psql(f"INSERT INTO eskit_schema_migrations (service, version) VALUES "
                f"('eskit-event-store', {int(f.name[:4])})", db=dbname)
    for log_id, oid, v, t in rows:
        pg.psql(f"INSERT INTO es_events VALUES ({log_id}, '{oid}', {v}, 'Old.Made', 'Old', "
                f"'Made', '{{\"v\": 1}}', {t})", db=dbname)
    pg.psql("INSERT INTO es_streams VALUES ('old1', 'Old', 2, 'Old.Made', 1, 2), "
            "('old2', 'Old', 1, 'Old.Made', 3, 3)", db=dbname)


def test_migration_of_a_database_without_event_ids(backend, services, request):
    url = backend()
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    make_old_database(backend.kind, url, request.getfixturevalue("pg")
                      if backend.kind == "pg" else None)
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready(), es.log()
    c = es.client()
    got = [x["event"] for x in c.get("/v1/logs").json["results"]]
    assert [e["originator"]["id"] for e in got] == ["old1", "old1", "old2"]
    stamps = [e["recorded_at"] for e in got]
    # the running maximum of occurred_on along log ids, capped at the
    # migration's time (the third event claims to have occurred in 2027)
    assert stamps[:2] == ["2023-11-14T22:13:20.000Z"] * 2
    assert before <= stamps[2] <= time.strftime("%Y-%m-%dT%H:%M:%S.999Z",
                                                time.gmtime(time.time() + 1))
    assert all("event_id" not in e for e in got)
    eid = str(uuid.uuid4())
    r = c.post("/v1/events", ev("old2", 2, event_id=eid, version=2))
    assert r.status == 201, r
    assert r.json["event"]["recorded_at"] >= stamps[-1]
    assert c.post("/v1/events", ev("old2", 2, event_id=eid, version=2)).status == 200


def test_a_commit_cut_off_says_its_outcome_is_unknown_and_a_resend_settles_it(pg, services):
    """PostgreSQL: a COMMIT that waits for a synchronous standby which never
    answers, then loses its connection, is committed locally but was never
    acknowledged. The client gets 503 saying the outcome is unknown; its
    resend with the same event ids gets the original answer (200), once."""
    url = pg.new_database()
    dbname = url.rsplit("/", 1)[1]
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready()
    c = es.client(timeout=60)
    assert c.post("/v1/events", ev("u0", 0)).status == 201  # connections are open
    eid = str(uuid.uuid4())
    body = ev("u1", 1, event_id=eid)
    answers = []
    pg.psql("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    pg.psql("SELECT pg_reload_conf()")
    # pg_reload_conf() only signals the postmaster: once a new session shows
    # the setting, the postmaster has reloaded and signalled the event store's
    # sessions too (which take it at their next command)
    t0 = time.time()
    while pg.psql("SHOW synchronous_standby_names") != "nobody" and time.time() - t0 < 20:
        time.sleep(0.05)
    time.sleep(0.2)
    try:
        t = threading.Thread(target=lambda: answers.append(c.post("/v1/events", body)))
        t.start()
        deadline = time.time() + 20
        killed = "0"
        while time.time() < deadline and killed == "0":
            time.sleep(0.1)
            killed = pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             f"WHERE datname = '{dbname}' AND wait_event = 'SyncRep'")
        assert killed != "0", "the append never waited for the standby"
    finally:
        pg.psql("ALTER SYSTEM RESET synchronous_standby_names")
        pg.psql("SELECT pg_reload_conf()")
    t.join(30)
    assert answers and answers[0].status == 503, answers
    err = answers[0].json["error"]
    assert err["code"] == "unavailable"
    assert err["details"] == {"commit_outcome": "unknown"}
    assert "may or may not have been written" in err["message"]
    # the commit had happened locally: the resend finds it
    deadline = time.time() + 10
    while True:
        again = c.post("/v1/events", body)
        if again.status != 503 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert again.status == 200, again
    assert again.json["event"]["event_id"] == eid
    assert [x["event"].get("event_id") for x in
            c.get("/v1/logs").json["results"]] == [None, eid]
