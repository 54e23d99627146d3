"""The CRUD store as a database you can query (SPEC §4, issue 14): the query
index in the store's own database (SQLite or PostgreSQL, the `backend`
fixture), POST /v1/entities/{type}/_find and its selector language, paging
while writes go on, time travel (as_of, as_of_log_id) on GET, the list and
_find, a second replica, and a SIGKILL during writes.

Expected answers come from query_oracle.py, a plain Python evaluator of the
same language over the documents as the event store's log says they are.
"""
import random
import signal
import threading
import time

import pytest

import query_oracle as oracle
from crud_fixtures import start_crud_env


@pytest.fixture
def env(backend, services):
    """An event store and a CRUD store whose query index is on this back end."""
    return start_crud_env(backend, services, crud_extra_env={"ESKIT_DATABASE_URL": backend()})


def log_entries(e):
    out, frm = [], 1
    while True:
        r = e.get("/v1/logs", params={"from_id": frm, "size": 1000})
        assert r.status == 200, r
        out += r.json["results"]
        if r.json["next_from_id"] > r.json["head_id"]:
            return out
        frm = r.json["next_from_id"]


def find_all(c, etype, body, page=1000):
    """Every result of a _find, walking the pages; the ids in order."""
    body = dict(body, limit=page)
    ids, token, index = [], None, "unset"
    while True:
        r = c.post(f"/v1/entities/{etype}/_find", dict(body, page_token=token))
        assert r.status == 200, (body, r)
        ids += [x["originator"]["id"] for x in r.json["results"]]
        index = r.json["index"]
        token = r.json["next_page_token"]
        if token is None:
            return ids, index


def create(c, etype, payload, oid=None):
    body = {"payload": payload}
    if oid:
        body["originator"] = {"id": oid}
    r = c.post(f"/v1/entities/{etype}", body)
    assert r.status == 201, r
    return r.json["originator"]["id"]


# --------------------------------------------------------------------------
# the language, on a fixed set of documents with every JSON type

DOCS = [
    {"name": "ada", "age": 36, "address": {"city": "Oslo", "zip": "0150"}, "tags": ["vip"]},
    {"name": "bob", "age": 25, "address": {"city": "Bergen"}, "tags": ["staff", "x"]},
    {"name": "cy", "age": 30.5, "address": {"city": "Oslo"}, "score": 9.7},
    {"name": "dee", "age": "40", "score": 3, "address": None},
    {"name": "eve", "age": None, "active": True},
    {"name": "fay", "active": False, "age": 30, "nested": {"a": {"b": {"c": 1}}}},
    {"name": "gus", "age": [1, 2], "obj": {"k": 1, "j": 2}},
    {"name": "hal", "age": {"years": 3}, "obj": {"j": 2, "k": 1}},
    {"name": "ivy", "age": 1e2, "tags": []},
    {"name": "jon", "age": -7, "nested": {"a": {"b": {"c": "1"}}}},
    {"name": "kim", "age": True},
    {"name": "lou", "age": 30, "address": {"city": "oslo"}},
]

SELECTORS = [
    {},
    {"name": "ada"},
    {"name": {"$eq": "bob"}},
    {"age": 30},
    {"age": 30.0},
    {"age": 100},
    {"age": {"$ne": 30}},
    {"age": {"$gt": 30}},
    {"age": {"$gte": 30}},
    {"age": {"$lt": 30}},
    {"age": {"$lte": 30}},
    {"age": {"$gt": "3"}},
    {"age": {"$lt": "5"}},
    {"age": {"$gte": False}},
    {"age": {"$lte": None}},
    {"age": {"$gt": 0, "$lt": 40}},
    {"age": {"$in": [30, "40", None]}},
    {"age": {"$nin": [30, "40", None]}},
    {"age": {"$exists": True}},
    {"age": {"$exists": False}},
    {"score": {"$ne": 3}},
    {"score": {"$nin": [3]}},
    {"score": {"$exists": False}},
    {"address.city": "Oslo"},
    {"address.city": {"$gte": "O"}},
    {"address.city": {"$exists": False}},
    {"address": None},
    {"address": {"city": "Bergen"}},
    {"address": {"city": "Oslo", "zip": "0150"}},
    {"address": {"zip": "0150", "city": "Oslo"}},
    {"nested.a.b.c": 1},
    {"nested.a.b.c": "1"},
    {"nested.a.b": {"c": 1}},
    {"tags": ["vip"]},
    {"tags": []},
    {"tags": "vip"},
    {"obj": {"k": 1, "j": 2}},
    {"age": [1, 2]},
    {"active": True},
    {"active": {"$ne": True}},
    {"$or": [{"name": "ada"}, {"age": {"$lt": 0}}]},
    {"$and": [{"address.city": "Oslo"}, {"age": {"$gt": 31}}]},
    {"address.city": "Oslo", "$or": [{"tags": {"$exists": True}}, {"score": {"$gt": 9.5}}]},
    {"$or": [{"$and": [{"age": {"$gte": 30}}, {"age": {"$lte": 36}}]}, {"name": "kim"}]},
    {"name": {"$in": []}},
    {"name": {"$nin": []}},
]

SORTS = [
    None,
    [{"age": "asc"}],
    [{"age": "desc"}],
    [{"address.city": "asc"}, {"name": "desc"}],
    [{"obj": "asc"}, {"age": "desc"}],
    ["score"],
]


def test_selector_language(env):
    c = env.c
    for d in DOCS:
        create(c, "Person", d)
    create(c, "Other", {"name": "ada"})
    docs = oracle.LogModel(log_entries(env.e), "Person").docs_at()
    assert len(docs) == len(DOCS)
    for sel in SELECTORS:
        for sort in SORTS:
            body = {"selector": sel}
            if sort is not None:
                body["sort"] = sort
            got, index = find_all(c, "Person", body, page=5)
            want = oracle.find(docs, sel, [s if isinstance(s, dict) else {s: "asc"}
                                           for s in sort or []])
            assert got == want, (sel, sort, [d for _, i, d in docs if i in got])
            assert index is None


def test_cross_type_sort_order(env):
    values = [{"z": 1}, [1], [0, 5], "b", "a", 2.5, 1, True, False, None]
    ids = {}
    for i, v in enumerate(values):
        ids[create(env.c, "Mixed", {"v": v, "i": i})] = v
    missing = create(env.c, "Mixed", {"i": 99})
    got, _ = find_all(env.c, "Mixed", {"selector": {}, "sort": [{"v": "asc"}]})
    assert got[0] == missing
    order = [ids[i] for i in got[1:]]
    assert order == [None, False, True, 1, 2.5, "a", "b", [0, 5], [1], {"z": 1}]
    got_desc, _ = find_all(env.c, "Mixed", {"selector": {}, "sort": [{"v": "desc"}]})
    assert got_desc == list(reversed(got))


def test_find_answer_shape_and_skip_payload(env):
    oid = create(env.c, "Shape", {"a": 1})
    r = env.c.post("/v1/entities/Shape/_find", {"selector": {"a": 1}})
    assert r.status == 200, r
    assert r.json == {"results": [{"entity_type": "Shape", "originator": {"id": oid, "version": 1},
                                   "payload": {"a": 1}, "deleted": False}],
                      "next_page_token": None, "index": None}
    r = env.c.post("/v1/entities/Shape/_find", {"selector": {}, "skip_payload": True})
    assert r.status == 200 and "payload" not in r.json["results"][0], r
    # updates and deletes are seen; deleted documents are not results
    r = env.c.patch(f"/v1/entities/Shape/{oid}", {"a": 2})
    assert r.status == 200, r
    assert find_all(env.c, "Shape", {"selector": {"a": 1}})[0] == []
    assert find_all(env.c, "Shape", {"selector": {"a": 2}})[0] == [oid]
    assert env.c.delete(f"/v1/entities/Shape/{oid}").status == 200
    assert find_all(env.c, "Shape", {"selector": {}})[0] == []


@pytest.mark.parametrize("sel,path", [
    ({"a": {"$foo": 1}}, "a"),
    ({"a.b": {"$gt": [1]}}, "a.b"),
    ({"a": {"$gt": {"x": 1}}}, "a"),
    ({"a": {"$in": 1}}, "a"),
    ({"a": {"$in": [[1]]}}, "a"),
    ({"a": {"$nin": [{"x": 1}]}}, "a"),
    ({"a": {"$exists": 1}}, "a"),
    ({"a": {"$eq": [1]}}, "a"),
    ({"a": {"$eq": 1, "b": 2}}, "a"),
    ({"$or": []}, "$or"),
    ({"$and": {}}, "$and"),
    ({"$or": [1]}, "$or[0]"),
    ({"$or": [{"x": {"$bad": 1}}]}, "x"),
    ({"$nor": [{"a": 1}]}, "$nor"),
    ({"a..b": 1}, "a..b"),
    ({".a": 1}, ".a"),
    ({"a.": 1}, "a."),
])
def test_malformed_selector_names_path(env, sel, path):
    r = env.c.post("/v1/entities/User/_find", {"selector": sel})
    assert r.status == 400, r
    assert r.json["error"]["code"] == "invalid_argument"
    assert path in r.json["error"]["message"], r


# --------------------------------------------------------------------------
# paging while writes go on: each match once

def test_paging_while_writes_go_on(env):
    c = env.c
    for sort, t in ((None, "Page"), ([{"i": "desc"}], "SortedPage")):
        ids = [create(c, t, {"i": i, "even": i % 2 == 0}) for i in range(120)]
        body = {"selector": {"even": True}, "limit": 7}
        if sort:
            body["sort"] = sort
        seen, token, n = [], None, 0
        while True:
            r = c.post(f"/v1/entities/{t}/_find", dict(body, page_token=token))
            assert r.status == 200, r
            seen += [x["payload"]["i"] for x in r.json["results"]]
            # writes between pages: new matches, changes and deletes of old ones
            create(c, t, {"i": 1000 + n, "even": True})
            assert c.patch(f"/v1/entities/{t}/{ids[2 * n]}", {"even": False}).status == 200
            assert c.delete(f"/v1/entities/{t}/{ids[2 * n + 20]}").status == 200
            n += 1
            token = r.json["next_page_token"]
            if token is None:
                break
        assert len(seen) == len(set(seen)) == 60
        if sort:
            assert seen == sorted(seen, reverse=True)


# --------------------------------------------------------------------------
# the oracle: random documents, random changes, random queries

PATHS = ["a", "b", "c.d", "c.e", "n", "s", "t"]


def rand_scalar(rnd):
    return rnd.choice([None, True, False, 0, 1, 2, -1, 2.5, 10, 100, "a", "b", "ab", "B", "",
                       "x", rnd.randint(-5, 20), rnd.choice("abcdef")])


def rand_value(rnd):
    k = rnd.random()
    if k < 0.75:
        return rand_scalar(rnd)
    if k < 0.9:
        return [rand_scalar(rnd) for _ in range(rnd.randint(0, 2))]
    return {rnd.choice("xy"): rand_scalar(rnd)}


def rand_doc(rnd):
    d = {}
    for p in ("a", "b", "n", "s", "t"):
        if rnd.random() < 0.7:
            d[p] = rand_value(rnd)
    if rnd.random() < 0.7:
        d["c"] = {k: rand_value(rnd) for k in ("d", "e") if rnd.random() < 0.7}
    elif rnd.random() < 0.3:
        d["c"] = rand_scalar(rnd)
    return d


def rand_cond(rnd):
    k = rnd.random()
    if k < 0.25:
        return rand_value(rnd)
    op = rnd.choice(oracle.OPS)
    if op in ("$in", "$nin"):
        return {op: [rand_scalar(rnd) for _ in range(rnd.randint(0, 4))]}
    if op == "$exists":
        return {op: rnd.random() < 0.5}
    if rnd.random() < 0.3:
        return {"$gte": rand_scalar(rnd), "$lt": rand_scalar(rnd)}
    return {op: rand_scalar(rnd)}


def rand_selector(rnd, depth=0):
    sel = {}
    for _ in range(rnd.randint(1, 3)):
        r = rnd.random()
        if r < 0.15 and depth < 2:
            sel[rnd.choice(["$and", "$or"])] = [rand_selector(rnd, depth + 1)
                                               for _ in range(rnd.randint(1, 3))]
        else:
            sel[rnd.choice(PATHS)] = rand_cond(rnd)
    return sel


def test_oracle_random_queries(env):
    rnd = random.Random(14)
    c = env.c
    # declared indexes on some paths: queries they serve must agree with the oracle too
    r = c.post("/v1/types", {"spec": {"entity_type": "Rnd", "indexes": [
        {"name": "by_a", "fields": ["a"]}, {"name": "by_n", "fields": ["n", "s"]},
        {"name": "by_cd", "fields": ["c.d"]}]}})
    assert r.status == 201, r
    wait_ready(c, "Rnd", ["by_a", "by_n", "by_cd"])
    used = set()
    ids = []
    for _ in range(2000):
        ids.append(create(c, "Rnd", rand_doc(rnd)))
    for oid in rnd.sample(ids, 300):
        patch = {p: (None if rnd.random() < 0.2 else rand_value(rnd))
                 for p in rnd.sample(PATHS[:2] + ["n", "s"], 2)}
        assert c.patch(f"/v1/entities/Rnd/{oid}", patch).status == 200
    for oid in rnd.sample(ids, 100):
        assert c.delete(f"/v1/entities/Rnd/{oid}").status == 200
    model = oracle.LogModel(log_entries(env.e), "Rnd")
    now = model.docs_at()
    points = [rnd.randint(1, model.head) for _ in range(20)]
    at = {p: model.docs_at(p) for p in points}
    for i in range(500):
        sel = rand_selector(rnd)
        body = {"selector": sel}
        sort = None
        if rnd.random() < 0.3:
            sort = [{rnd.choice(PATHS): rnd.choice(["asc", "desc"])}]
            body["sort"] = sort
        docs = now
        if i % 10 == 0:
            p = rnd.choice(points)
            body["as_of_log_id"] = p
            docs = at[p]
        got, index = find_all(c, "Rnd", body)
        used.add(index)
        assert got == oracle.find(docs, sel, sort), body
    assert {"by_a", "by_n", "by_cd", None} <= used, used


# --------------------------------------------------------------------------
# time travel

def test_time_travel(env):
    c, t = env.c, "Travel"
    marks = []  # (as_of time, as_of_log_id, {id: payload or None})

    def mark(states):
        time.sleep(0.01)
        head = env.head_id()
        r = env.e.get("/v1/logs", params={"from_id": head, "size": 1})
        recorded = r.json["results"][0]["event"]["recorded_at"] if r.json["results"] else None
        marks.append((recorded, head, dict(states)))
        time.sleep(0.01)

    states = {}
    a = create(c, t, {"v": 1, "k": "x"})
    states[a] = {"v": 1, "k": "x"}
    mark(states)
    b = create(c, t, {"v": 10})
    states[b] = {"v": 10}
    mark(states)
    assert c.patch(f"/v1/entities/{t}/{a}", {"v": 2, "k": None}).status == 200
    states[a] = {"v": 2}
    mark(states)
    assert c.delete(f"/v1/entities/{t}/{b}").status == 200
    states[b] = None
    mark(states)
    r = c.put(f"/v1/entities/{t}/{a}", {"originator": {"version": 2}, "payload": {"v": 3}})
    assert r.status == 200, r
    states[a] = {"v": 3}
    mark(states)

    for recorded, log_id, st in marks:
        for point in ({"as_of": recorded}, {"as_of_log_id": log_id}):
            live = {i: p for i, p in st.items() if p is not None}
            for oid, payload in st.items():
                r = c.get(f"/v1/entities/{t}/{oid}", params=point)
                if payload is None:
                    assert r.status == 404, (point, r)
                    r = c.get(f"/v1/entities/{t}/{oid}", params=dict(point, deleted="true"))
                    assert r.status == 200 and r.json["deleted"] is True, r
                else:
                    assert r.status == 200, (point, r)
                    assert r.json["payload"] == payload and r.json["deleted"] is False
            r = c.get(f"/v1/entities/{t}", params=point)
            assert r.status == 200, r
            assert {x["originator"]["id"]: x["payload"] for x in r.json["results"]} == live
            r = c.post(f"/v1/entities/{t}/_find", dict(point, selector={"v": {"$gte": 2}}))
            assert r.status == 200, r
            assert {x["originator"]["id"] for x in r.json["results"]} == \
                {i for i, p in live.items() if p["v"] >= 2}
    # before anything: nothing
    r = c.get(f"/v1/entities/{t}/{a}", params={"as_of": "2000-01-01T00:00:00Z"})
    assert r.status == 404, r
    r = c.post(f"/v1/entities/{t}/_find", {"selector": {}, "as_of": "2000-01-01T00:00:00Z"})
    assert r.status == 200 and r.json["results"] == [], r
    # version, as_of and as_of_log_id exclude each other
    for params in ({"version": 1, "as_of_log_id": 1},
                   {"version": 1, "as_of": "2026-01-01T00:00:00Z"},
                   {"as_of_log_id": 1, "as_of": "2026-01-01T00:00:00Z"},
                   {"as_of": "yesterday"}, {"as_of_log_id": "x"}):
        r = c.get(f"/v1/entities/{t}/{a}", params=params)
        assert r.status == 400, (params, r)
    r = c.post(f"/v1/entities/{t}/_find", {"selector": {}, "as_of_log_id": 1,
                                           "as_of": "2026-01-01T00:00:00Z"})
    assert r.status == 400, r


# --------------------------------------------------------------------------
# consistency across replicas and crashes

def test_find_through_second_replica_sees_acknowledged_write(env, backend, services):
    extra = {"ESKIT_EVENT_STORE_URL": env.es.url}
    if backend.kind == "pg":
        # a second replica sharing the first one's index is the production shape
        extra["ESKIT_DATABASE_URL"] = env.crud.env["ESKIT_DATABASE_URL"]
    else:
        extra["ESKIT_DATABASE_URL"] = backend()
    second = services("crud-store", extra)
    assert second.wait_ready(), second.log()
    c2 = second.client()
    for i in range(30):
        oid = create(env.c, "Repl", {"i": i})
        r = c2.post("/v1/entities/Repl/_find", {"selector": {"i": i}})
        assert r.status == 200, r
        assert [x["originator"]["id"] for x in r.json["results"]] == [oid]
        r = env.c.patch(f"/v1/entities/Repl/{oid}", {"j": i})
        assert r.status == 200
        r = c2.post("/v1/entities/Repl/_find", {"selector": {"j": i}})
        assert [x["originator"]["id"] for x in r.json["results"]] == [oid]
    # concurrent writers and queries share the read barrier's rounds: each
    # query still sees the write acknowledged just before it
    failures = []

    def writer_reader(k):
        w, q = env.crud.client(), second.client()
        for i in range(15):
            oid = create(w, "Conc", {"k": k, "i": i})
            r = q.post("/v1/entities/Conc/_find", {"selector": {"k": k, "i": i}})
            if r.status != 200 or [x["originator"]["id"] for x in r.json["results"]] != [oid]:
                failures.append((k, i, r))

    ts = [threading.Thread(target=writer_reader, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not failures, failures[:3]


def snapshot(c, etype, points):
    out = []
    for p in points:
        r = c.post(f"/v1/entities/{etype}/_find",
                   {"selector": {}, "as_of_log_id": p, "limit": 1000})
        assert r.status == 200, r
        out.append(r.json["results"])
        while r.json["next_page_token"]:
            r = c.post(f"/v1/entities/{etype}/_find",
                       {"selector": {}, "page_token": r.json["next_page_token"], "limit": 1000})
            out[-1] += r.json["results"]
    return out


def test_sigkill_during_writes_then_restart_equals_rebuild(env, backend, services):
    stop = threading.Event()
    writers_c = [env.es.client() for _ in range(3)]

    def writer(k):
        # write through the event store directly as well as through the CRUD
        # store, so that the index has work while the CRUD store dies
        rnd = random.Random(k)
        ids = []
        while not stop.is_set():
            oid = f"kill-{k}-{len(ids)}"
            ev = {"originator": {"id": oid}, "event_type": "Kill.Created",
                  "payload": {"k": k, "n": rnd.randint(0, 9)}}
            if writers_c[k].post("/v1/events", ev).status == 201:
                ids.append(oid)
                if rnd.random() < 0.3:
                    writers_c[k].post("/v1/events", {
                        "originator": {"id": oid, "version": 2}, "event_type": "Kill.Updated",
                        "payload": {"n": None, "m": 1}})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for _ in range(40):
        create(env.c, "Kill", {"via": "crud"})
        env.c.post("/v1/entities/Kill/_find", {"selector": {"n": 3}})
    env.crud.proc.send_signal(signal.SIGKILL)
    env.crud.proc.wait()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    env.crud.start()
    assert env.crud.wait_ready(), env.crud.log()
    fresh = services("crud-store", {"ESKIT_EVENT_STORE_URL": env.es.url,
                                    "ESKIT_DATABASE_URL": backend()})
    assert fresh.wait_ready(), fresh.log()
    head = env.head_id()
    points = sorted({1, head // 3, head // 2, head - 1, head})
    assert snapshot(env.c, "Kill", points) == snapshot(fresh.client(), "Kill", points)
    model = oracle.LogModel(log_entries(env.e), "Kill")
    got, _ = find_all(env.c, "Kill", {"selector": {}})
    assert got == [i for _, i, _ in model.docs_at()]


# --------------------------------------------------------------------------
# declared indexes

INDEXES = [{"name": "by_age", "fields": ["age"]},
           {"name": "by_city_name", "fields": ["address.city", "name"]},
           {"name": "by_name", "fields": ["name"]},
           {"name": "by_score", "fields": ["score"]}]


def wait_ready(c, etype, names, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.get(f"/v1/types/{etype}")
        assert r.status == 200, r
        st = r.json["index_status"]
        assert set(st) == set(names), st
        assert set(st.values()) <= {"building", "ready"}, st
        if all(v == "ready" for v in st.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"indexes of {etype} not ready: {st}")


def test_declared_indexes(env, backend):
    c = env.c
    for d in DOCS:
        create(c, "Indexed", d)
    r = c.post("/v1/types", {"spec": {"entity_type": "Indexed", "indexes": INDEXES}})
    assert r.status == 201, r
    assert r.json["spec"]["indexes"] == INDEXES
    wait_ready(c, "Indexed", [i["name"] for i in INDEXES])
    for d in DOCS[:4]:  # documents written after the build are in the index too
        create(c, "Indexed", dict(d, late=True))
    docs = oracle.LogModel(log_entries(env.e), "Indexed").docs_at()
    for sel in SELECTORS:
        got, index = find_all(c, "Indexed", {"selector": sel}, page=3)
        assert got == oracle.find(docs, sel), sel
    cases = [
        ({"age": 30}, "by_age"),
        ({"age": {"$gte": 30}}, "by_age"),
        ({"age": {"$lt": 30}}, "by_age"),
        ({"age": {"$gt": 1, "$lte": 36}}, "by_age"),
        ({"age": None}, "by_age"),
        ({"age": True}, "by_age"),
        ({"address.city": "Oslo", "age": {"$ne": 3}}, "by_city_name"),
        ({"name": "ada"}, "by_name"),
        ({"score": {"$gt": 5}}, "by_score"),
        ({"age": {"$ne": 30}}, None),
        ({"age": {"$in": [30]}}, None),
        ({"$or": [{"age": 30}]}, None),
        ({"address.zip": "0150"}, None),
        ({"age": [1, 2]}, None),
        ({"name": {"$gt": "c"}}, "by_name" if backend.kind == "sqlite" else None),
    ]
    for sel, want in cases:
        got, index = find_all(c, "Indexed", {"selector": sel})
        assert index == want, (sel, index)
        assert got == oracle.find(docs, sel), sel
    # sorted queries use the index too and agree with the oracle
    got, index = find_all(c, "Indexed", {"selector": {"age": {"$gte": 0}},
                                         "sort": [{"age": "desc"}]}, page=2)
    assert index == "by_age"
    assert got == oracle.find(docs, {"age": {"$gte": 0}}, [{"age": "desc"}])
    # an index added by PUT is built and reported
    more = INDEXES + [{"name": "by_active", "fields": ["active"]}]
    r = c.put("/v1/types/Indexed", {"spec": {"entity_type": "Indexed", "indexes": more,
                                             "schema_spec": {"schema_version": 1}}})
    assert r.status == 200, r
    r = c.get("/v1/types/Indexed")
    assert r.json["index_status"]["by_active"] in ("building", "ready"), r
    wait_ready(c, "Indexed", [i["name"] for i in more])
    got, index = find_all(c, "Indexed", {"selector": {"active": False}})
    assert index == "by_active" and got == oracle.find(docs, {"active": False})


@pytest.mark.parametrize("indexes,where", [
    ("x", "spec.indexes"),
    ([{"name": "a", "fields": ["x"]}] * 2, "spec.indexes[1].name"),
    ([{"name": f"i{i}", "fields": ["x"]} for i in range(17)], "spec.indexes"),
    ([{"name": "a b", "fields": ["x"]}], "spec.indexes[0]"),
    ([{"name": "a", "fields": []}], "spec.indexes[0].fields"),
    ([{"name": "a", "fields": ["a", "b", "c", "d", "e"]}], "spec.indexes[0].fields"),
    ([{"name": "a", "fields": ["x'); DROP TABLE crud_docs; --"]}], "spec.indexes[0].fields[0]"),
    ([{"name": "a", "fields": ["a..b"]}], "spec.indexes[0].fields[0]"),
    ([{"name": "a", "fields": [3]}], "spec.indexes[0].fields[0]"),
    ([{"name": "a", "fields": ["x"], "unique": True}], "spec.indexes[0]"),
])
def test_malformed_index_declarations(env, indexes, where):
    r = env.c.post("/v1/types", {"spec": {"entity_type": "BadIx", "indexes": indexes}})
    assert r.status == 400, r
    assert where in r.json["error"]["message"], r


def test_rebuild_on_purpose_and_after_loss(tmp_path, services):
    """--rebuild empties the index and builds it again from the log; a lost
    index database is built again at start (SQLite, where the test can reach
    into the file)."""
    import sqlite3
    import subprocess

    from eskit import BIN_DIR, Client, free_port

    es = services("event-store", {"ESKIT_DATABASE_URL": f"sqlite:{tmp_path}/es.db"})
    assert es.wait_ready(), es.log()
    ix = tmp_path / "ix.db"
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url,
                                   "ESKIT_DATABASE_URL": f"sqlite:{ix}"})
    assert crud.wait_ready(), crud.log()
    ids = [create(crud.client(), "Rb", {"i": i}) for i in range(20)]
    assert len(find_all(crud.client(), "Rb", {"selector": {}})[0]) == 20
    assert crud.stop() == 0
    # a row the log never said: only a rebuild removes it
    con = sqlite3.connect(ix)
    con.execute("INSERT INTO crud_docs (entity_type, doc_id, version, created_log_id, "
                "valid_from_log_id, valid_from_recorded_at, deleted, payload) "
                "VALUES ('Rb', 'ghost', 1, 100000, 1, 0, 0, '{\"i\": -1}')")
    con.commit()
    con.close()

    def run(args):
        port = free_port()
        env = dict(crud.env, ESKIT_LISTEN=f"127.0.0.1:{port}")
        p = subprocess.Popen([f"{BIN_DIR}/eskit-crud-store"] + args, env=env, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = Client(f"http://127.0.0.1:{port}")
        for _ in range(200):
            try:
                if c.get("/readyz").status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        got = find_all(c, "Rb", {"selector": {}})[0]
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        return got

    assert run([]) == ids + ["ghost"]  # derived data is trusted as it is
    assert run(["--rebuild"]) == ids
    ix.unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / f"ix.db{extra}").unlink(missing_ok=True)
    assert run([]) == ids
