"""Stream lifecycle (SPEC §3): backward reads, retention settings (applied to
reads at once, to storage by the scavenger), and erasure, on both back ends.
Storage is looked at directly (SQLite file, psql) to see that rows are gone."""
import sqlite3
import threading
import time
import uuid

import pytest

from eskit import Client, files_under, grep_files, run_threads


def ev(oid, i, etype="Ret.Happened", **kw):
    return {"originator": {"id": oid}, "event_type": etype, "payload": {"i": i, **kw}}


def append_n(c, oid, n, start=1, **kw):
    r = c.post("/v1/events", {"events": [ev(oid, i, **kw) for i in range(start, start + n)]})
    assert r.status == 201, r
    return [x["log_id"] for x in r.json["results"]]


def whole_log(c):
    out, frm = [], 1
    while True:
        r = c.get("/v1/logs", params={"from_id": frm, "size": 1000})
        assert r.status == 200, r
        out += r.json["results"]
        if r.json["next_from_id"] > r.json["head_id"]:
            return out
        frm = r.json["next_from_id"]


def versions(r):
    assert r.status == 200, r
    return [e["originator"]["version"] for e in r.json["events"]]


class Storage:
    """Counts rows in the event store's tables, from outside the service."""

    def __init__(self, url, pg):
        self.url, self.pg = url, pg

    def rows(self, sql):
        if self.url.startswith("sqlite:"):
            con = sqlite3.connect(self.url[len("sqlite:"):])
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = self.pg.psql(sql, db=self.url.rsplit("/", 1)[1])
        return [tuple(int(x) for x in line.split("|")) for line in out.splitlines() if line]

    def versions(self, oid):
        return [r[0] for r in self.rows(
            f"SELECT version FROM es_events WHERE originator_id = '{oid}' ORDER BY version")]

    def snapshots(self, oid):
        return [r[0] for r in self.rows(
            f"SELECT version FROM es_snapshots WHERE originator_id = '{oid}' ORDER BY version")]


@pytest.fixture
def es_env(backend, services, request):
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url, "ESKIT_SCAVENGE_INTERVAL": "1"})
    assert es.wait_ready(), es.log()
    pg = request.getfixturevalue("pg") if backend.kind == "pg" else None
    return es, Client(es.url), Storage(url, pg)


def wait_for(cond, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_backward_reads_every_range_form(es_env):
    es, c, _ = es_env
    append_n(c, "b1", 10)
    base = "/v1/events/b1?direction=backward"
    assert versions(c.get(base)) == list(range(10, 0, -1))
    assert versions(c.get(base + "&from_version=7")) == [7, 6, 5, 4, 3, 2, 1]
    assert versions(c.get(base + "&to_version=8")) == [10, 9, 8]
    assert versions(c.get(base + "&from_version=6&to_version=4")) == [6, 5, 4]
    assert versions(c.get(base + "&limit=3")) == [10, 9, 8]
    assert versions(c.get(base + "&from_version=9&to_version=2&limit=2")) == [9, 8]
    assert versions(c.get(base + "&from_version=50")) == list(range(10, 0, -1))
    assert versions(c.get(base + "&from_version=3&to_version=5")) == []
    assert versions(c.get(base + "&from_version=5&to_version=5")) == [5]
    assert versions(c.get("/v1/events/nothing-here?direction=backward")) == []
    # forward is unchanged, spelled out or not
    assert versions(c.get("/v1/events/b1?direction=forward&from_version=4&limit=2")) == [4, 5]
    assert versions(c.get("/v1/events/b1?to_version=3")) == [1, 2, 3]
    # payloads come back with their events
    r = c.get(base + "&limit=1")
    assert r.json["events"][0]["payload"] == {"i": 10}
    # a page walk backward: each version once
    seen, frm = [], 10
    while frm >= 1:
        page = versions(c.get(f"{base}&from_version={frm}&limit=3"))
        seen += page
        frm = page[-1] - 1
    assert seen == list(range(10, 0, -1))
    # a long stream read backward (the readers' long-read path)
    append_n(c, "b-long", 600)
    assert versions(c.get("/v1/events/b-long?direction=backward")) == list(range(600, 0, -1))
    assert versions(c.get("/v1/events/b-long?direction=backward&from_version=300&limit=200")) \
        == list(range(300, 100, -1))


def test_backward_read_is_an_index_range_on_postgresql(backend, services, request):
    """Same cost as forward: PostgreSQL walks the (originator_id, version)
    index backward, with no sort."""
    if backend.kind != "pg":
        pytest.skip("a PostgreSQL plan")
    pg = request.getfixturevalue("pg")
    url = backend()
    es = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert es.wait_ready(), es.log()
    c = Client(es.url)
    for k in range(20):
        append_n(c, f"p{k}", 50)
    db = url.rsplit("/", 1)[1]
    pg.psql("ANALYZE es_events; ANALYZE es_streams", db=db)
    plan = pg.psql(
        "SET enable_seqscan = off; EXPLAIN SELECT e.version, e.payload FROM es_events AS e "
        "WHERE e.originator_id = 'p3' AND e.version >= 1 AND e.version <= 40 AND e.version >= "
        "(SELECT COALESCE(s.truncate_before, 1) FROM es_streams AS s WHERE s.id = 'p3') "
        "ORDER BY e.version DESC LIMIT 10", db=db)
    assert "Index Scan Backward using es_events_originator_id_version_key" in plan, plan
    assert "Sort" not in plan, plan


def metadata(c, oid, **settings):
    r = c.put(f"/v1/streams/{oid}/metadata", settings)
    assert r.status == 200, r
    return r.json


@pytest.mark.parametrize("setting", ["max_count", "truncate_before", "max_age_seconds"])
def test_retention_reads_at_once_storage_within_a_minute(es_env, setting):
    es, c, store = es_env
    oid, other = f"keep-{setting}", f"other-{setting}"
    logs = []
    for i in range(1, 11):
        if setting == "max_age_seconds" and i == 6:
            time.sleep(8)  # events 1..5 are then 8 s old, 6..10 stay within 6 s a while
        logs += append_n(c, oid, 1, start=i)
        append_n(c, other, 1, start=i)
    for v in (2, 5, 7):
        assert c.put(f"/v1/snapshots/{oid}", {"version": v, "payload": {"at": v}}).status == 204
    value = {"max_count": 5, "truncate_before": 6, "max_age_seconds": 6}[setting]
    s = metadata(c, oid, **{setting: value})
    # reads at once: versions 6..10 (the same cut for each setting)
    assert s["first_version"] == 6 and s["version"] == 10, s
    assert s["metadata"] == {"max_count": None, "max_age_seconds": None,
                             "truncate_before": None, setting: value}
    assert versions(c.get(f"/v1/events/{oid}")) == [6, 7, 8, 9, 10]
    assert versions(c.get(f"/v1/events/{oid}?from_version=2&to_version=7")) == [6, 7]
    assert versions(c.get(f"/v1/events/{oid}?direction=backward&limit=3")) == [10, 9, 8]
    assert versions(c.get(f"/v1/events/{oid}?direction=backward&to_version=1")) == \
        [10, 9, 8, 7, 6]
    assert c.get(f"/v1/streams/{oid}").json["first_version"] == 6
    # storage within a minute: rows gone, snapshots below 6 gone, the log has gaps
    wait_for(lambda: store.versions(oid) == [6, 7, 8, 9, 10], what="the scavenger")
    wait_for(lambda: store.snapshots(oid) == [7], what="snapshots below 6 to go")
    r = c.get("/v1/logs", params={"size": 1000})
    got = [(x["id"], x["event"]["originator"]["id"]) for x in r.json["results"]]
    assert [i for i, o in got if o == oid] == logs[5:]
    assert [o for _, o in got].count(other) == 10
    assert r.json["head_id"] == max(i for i, _ in got)
    ids = [i for i, _ in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # the stream goes on: the next append is last + 1, the log id is new
    r = c.post("/v1/events", {"originator": {"id": oid, "version": 11},
                              "event_type": "Ret.Happened", "payload": {"i": 11}})
    assert r.status == 201, r
    assert r.json["log_id"] > max(ids)
    assert c.get(f"/v1/streams/{oid}").json["version"] == 11
    # the other stream is untouched
    assert versions(c.get(f"/v1/events/{other}")) == list(range(1, 11))
    assert c.get(f"/v1/streams/{other}").json["first_version"] == 1


def test_retention_settings_replace_and_clear(es_env):
    es, c, store = es_env
    append_n(c, "rc", 8)
    s = metadata(c, "rc", max_count=6, truncate_before=4)
    assert s["first_version"] == 4
    s = metadata(c, "rc", max_count=2)  # a PUT replaces every setting
    assert s["first_version"] == 7
    assert s["metadata"] == {"max_count": 2, "max_age_seconds": None, "truncate_before": None}
    wait_for(lambda: store.versions("rc") == [7, 8], what="the scavenger")
    # cleared: nothing more goes, what went stays gone
    s = metadata(c, "rc", max_count=None)
    assert s["first_version"] == 7 and s["metadata"]["max_count"] is None
    append_n(c, "rc", 3, start=9)
    assert versions(c.get("/v1/events/rc")) == [7, 8, 9, 10, 11]
    # truncate_before past the end: nothing readable until the stream reaches it
    s = metadata(c, "rc", truncate_before=13)
    assert s["first_version"] == 12 and versions(c.get("/v1/events/rc")) == []
    append_n(c, "rc", 2, start=12)
    assert versions(c.get("/v1/events/rc")) == [13]
    assert c.put("/v1/streams/never-was/metadata", {"max_count": 1}).status == 404
    # the newest entry of the log is never deleted (its id is the head)
    append_n(c, "rc-last", 3)
    metadata(c, "rc-last", truncate_before=10)
    wait_for(lambda: store.versions("rc-last") == [3], what="the scavenger")
    time.sleep(1.5)
    assert store.versions("rc-last") == [3]
    r = c.post("/v1/events", ev("rc-after", 1))
    assert r.status == 201 and r.json["log_id"] == c.get("/v1/logs?size=1").json["head_id"]
    wait_for(lambda: store.versions("rc-last") == [], what="the scavenger")


def test_tailing_reader_across_a_scavenge(es_env):
    """A reader following the log while a retained stream is scavenged: ids
    only rise, every entry of the unretained stream is seen, and so is every
    entry of the retained one that its retention still keeps at the end."""
    es, c, store = es_env
    stop = threading.Event()
    seen, errors = [], []

    def reader():
        rc = Client(es.url)
        frm = 1
        while not stop.is_set() or frm <= rc.get("/v1/logs?size=1").json["head_id"]:
            r = rc.get("/v1/logs", params={"from_id": frm, "size": 50, "wait": 1})
            if r.status != 200:
                errors.append(r)
                return
            for x in r.json["results"]:
                if seen and x["id"] <= seen[-1][0]:
                    errors.append(f"id {x['id']} after {seen[-1][0]}")
                seen.append((x["id"], x["event"]["originator"]["id"],
                             x["event"]["originator"]["version"]))
            frm = r.json["next_from_id"]
            time.sleep(0.05)  # slower than the writers: the scavenger runs under it

    def writer(oid, n):
        wc = Client(es.url)
        for i in range(n):
            r = wc.post("/v1/events", ev(oid, i))
            if r.status != 201:
                errors.append(r)
    append_n(c, "tail-ret", 1)
    metadata(c, "tail-ret", max_count=5)
    t = threading.Thread(target=reader)
    t.start()
    run_threads([(writer, "tail-ret", 300), (writer, "tail-plain", 300)])
    wait_for(lambda: len(store.versions("tail-ret")) <= 5, what="the scavenger")
    stop.set()
    t.join(120)
    assert not errors, errors[:3]
    plain = [v for _, o, v in seen if o == "tail-plain"]
    assert plain == list(range(1, 301))
    kept = [v for _, o, v in seen if o == "tail-ret"]
    assert kept == sorted(kept) and kept[-5:] == [297, 298, 299, 300, 301]


def test_erase_a_stream(es_env):
    es, c, store = es_env
    append_n(c, "er1", 4, secret="eraseme")
    append_n(c, "er-other", 2)
    assert c.put("/v1/snapshots/er1", {"version": 3, "payload": {"s": 1}}).status == 204
    r = c.delete("/v1/streams/er1?expected_version=3")
    assert r.status == 409 and r.json["error"]["details"]["current_version"] == 4, r
    assert c.delete("/v1/streams/never-was").status == 404
    head = c.get("/v1/logs?size=1").json["head_id"]
    r = c.delete("/v1/streams/er1?expected_version=4")
    assert r.status == 204, r
    # the Erased entry, with the next log id and version last + 1
    r = c.get("/v1/logs", params={"from_id": 1, "size": 100})
    entries = [(x["id"], x["event"]) for x in r.json["results"]]
    er = [(i, e) for i, e in entries if e["originator"]["id"] == "er1"]
    assert len(er) == 1, er
    i, e = er[0]
    assert i == head + 1 and e["event_type"] == "Ret.Erased" and e["payload"] == {}
    assert e["originator"] == {"id": "er1", "version": 5}
    assert len([1 for _, e in entries if e["originator"]["id"] == "er-other"]) == 2
    # a tombstone from now on
    for path in ("/v1/events/er1", "/v1/events/er1?direction=backward", "/v1/streams/er1",
                 "/v1/snapshots/er1"):
        r = c.get(path)
        assert r.status == 410 and r.json["error"]["code"] == "gone", (path, r)
    assert c.put("/v1/snapshots/er1", {"version": 1, "payload": {}}).status == 410
    assert c.put("/v1/streams/er1/metadata", {"max_count": 1}).status == 410
    assert c.delete("/v1/streams/er1").status == 410
    for body in (ev("er1", 9), {**ev("er1", 9), "originator": {"id": "er1", "version": 6}},
                 {**ev("er1", 9), "originator": {"id": "er1", "version": 1}}):
        r = c.post("/v1/events", body)
        assert r.status == 410 and r.json["error"]["code"] == "gone", r
    # a batch touching it writes nothing
    r = c.post("/v1/events", {"events": [ev("er-other", 3), ev("er1", 1)]})
    assert r.status == 410, r
    assert versions(c.get("/v1/events/er-other")) == [1, 2]
    # not in lists
    r = c.get("/v1/streams?entity_type=Ret")
    assert [s["id"] for s in r.json["streams"]] == ["er-other"]
    # storage: only the Erased entry is left of it
    assert store.versions("er1") == [5] and store.snapshots("er1") == []
    # an erased stream that was never read by this process's committer
    append_n(c, "er2", 1)
    assert c.delete("/v1/streams/er2").status == 204
    assert c.post("/v1/events", ev("er2", 1)).status == 410


def test_erase_under_concurrent_appends(es_env):
    """Appends to the stream being erased and to others, and a reader of the
    log, all at once: the log guarantee holds, every append to it acknowledged
    before the erasure is gone, every one after gets 410."""
    es, c, store = es_env
    append_n(c, "victim", 1)
    erased_at = []
    results = {"victim": [], "bystander-0": [], "bystander-1": []}
    stop = threading.Event()
    seen, errors = [], []

    def writer(oid):
        wc = Client(es.url)
        after = 0
        for i in range(20000):  # until 20 appends were sent after the erasure
            sent = time.monotonic()
            r = wc.post("/v1/events", ev(oid, i))
            results[oid].append((sent, r.status))
            if erased_at:
                after += 1
                if after >= 20:
                    break

    def eraser():
        while len(results["victim"]) < 30:
            time.sleep(0.01)
        r = Client(es.url).delete("/v1/streams/victim")
        erased_at.append((time.monotonic(), r.status))

    def reader():
        rc = Client(es.url)
        frm = 1
        while True:
            done = stop.is_set()
            r = rc.get("/v1/logs", params={"from_id": frm, "size": 100, "wait": 1})
            if r.status != 200:
                errors.append(r)
                return
            for x in r.json["results"]:
                if seen and x["id"] <= seen[-1][0]:
                    errors.append(f"id {x['id']} after {seen[-1][0]}")
                seen.append((x["id"], x["event"]["originator"]["id"], x["event"]["event_type"]))
            frm = r.json["next_from_id"]
            if done and not r.json["results"]:
                return

    t = threading.Thread(target=reader)
    t.start()
    run_threads([(writer, "victim"), (writer, "bystander-0"), (writer, "bystander-1"),
                 (eraser,)])
    stop.set()
    t.join(120)
    assert not errors, errors[:3]
    assert erased_at and erased_at[0][1] == 204, erased_at
    when = erased_at[0][0]
    statuses = [s for _, s in results["victim"]]
    assert set(statuses) <= {201, 410}, statuses
    # once one append got 410, none after it succeeds; those sent after the
    # erasure's answer all got 410
    first_gone = statuses.index(410)
    assert all(s == 410 for s in statuses[first_gone:])
    assert all(s == 410 for at, s in results["victim"] if at > when)
    for b in ("bystander-0", "bystander-1"):
        n = len(results[b])
        assert [s for _, s in results[b]] == [201] * n
        assert versions(c.get(f"/v1/events/{b}")) == list(range(1, n + 1))
    # the reader saw one Erased entry and nothing of the victim after it
    erased = [i for i, o, t_ in seen if o == "victim" and t_ == "Ret.Erased"]
    assert len(erased) == 1
    assert not [i for i, o, _ in seen if o == "victim" and i > erased[0]]
    # the log now: the victim's Erased entry only; the bystanders whole
    now = [(x["event"]["originator"]["id"], x["event"]["event_type"]) for x in whole_log(c)]
    assert [t_ for o, t_ in now if o == "victim"] == ["Ret.Erased"]
    assert sum(1 for o, _ in now if o.startswith("bystander")) == \
        len(results["bystander-0"]) + len(results["bystander-1"])
    assert c.get("/v1/events/victim").status == 410


def test_erased_bytes_leave_the_database_files(es_env):
    es, c, store = es_env
    secret = f"zz-{uuid.uuid4().hex}-zz"
    for i in range(3):
        append_n(c, "bytes", 1, start=i, secret=secret, pad="x" * 3000)
    assert c.put("/v1/snapshots/bytes", {"version": 2, "payload": {"s": secret}}).status == 204
    append_n(c, "bytes-other", 2)
    assert c.delete("/v1/streams/bytes").status == 204
    needle = secret.encode()
    if store.url.startswith("sqlite:"):
        path = store.url[len("sqlite:"):]
        files = [path, path + "-wal"]
        # secure_delete and the checkpoint after erasure (or the scavenger's
        # next one, when a reader held the WAL): nothing to do by hand
        wait_for(lambda: not grep_files(files, needle), timeout=30, what="bytes to go")
    else:
        pg = store.pg
        db = store.url.rsplit("/", 1)[1]
        # docs/retention.md: the maintenance step on PostgreSQL
        pg.psql("ALTER SYSTEM SET wal_recycle = off")
        pg.psql("SELECT pg_reload_conf()")
        pg.psql("VACUUM (FULL, ANALYZE) es_events, es_snapshots", db=db)
        pg.psql("VACUUM FULL pg_catalog.pg_statistic", db=db)
        for _ in range(2):
            pg.psql("SELECT pg_switch_wal()")
            pg.psql("CHECKPOINT")
        hits = grep_files(files_under(pg.data), needle)
        assert not hits, hits
    assert versions(c.get("/v1/events/bytes-other")) == [1, 2]
