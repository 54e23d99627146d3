"""Smoke tests of the CRUD store (SPEC §4) on top of a real event store, on
both back ends: the life of a document, types and schemas, paging, long
histories, and 16 concurrent read-modify-write clients."""
import threading
import time

import pytest

from promcheck import check_metrics


@pytest.fixture
def stack(backend, services):
    """An event store and a CRUD store that talks to it."""
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    assert es.wait_ready(), es.log()
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud.wait_ready(), crud.log()
    return es, crud


def merge_patch(target, patch):
    """RFC 7386 MergePatch, as the CRUD store replays it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def replay(es, doc_id, typ):
    """The document rebuilt from the event store's stream, in Python."""
    events = es.client().get(f"/v1/events/{doc_id}").json["events"]
    doc, deleted, version = None, False, 0
    for ev in events:
        version = ev["originator"]["version"]
        if ev["event_type"] == f"{typ}.Created":
            doc, deleted = ev["payload"], False
        elif ev["event_type"] == f"{typ}.Updated":
            doc = merge_patch(doc, ev["payload"])
        elif ev["event_type"] == f"{typ}.Deleted":
            deleted = True
    return doc, deleted, version


def test_document_life(stack):
    es, crud = stack
    c = crud.client()
    r = c.post("/v1/entities/User", {"payload": {"email": "ada@example.com", "n": 1}})
    assert r.status == 201, r
    uid = r.json["originator"]["id"]
    assert r.json["originator"]["version"] == 1 and len(uid) == 36
    assert r.header("Location") == f"/v1/entities/User/{uid}"

    r = c.post("/v1/entities/User", {"payload": {"email": "bob@example.com"},
                                     "originator": {"id": "bob"}})
    assert r.status == 201 and r.json == {"originator": {"id": "bob", "version": 1}}
    assert c.post("/v1/entities/User", {"payload": {}, "originator": {"id": "bob"}}).status == 409
    assert c.post("/v1/entities/User", {"payload": [1]}).status == 400
    assert c.post("/v1/entities/User", {"payload": {}, "originator": {"id": "a b"}}).status == 400
    assert c.post("/v1/entities/eskit.Thing", {"payload": {}}).status == 400

    g = c.get("/v1/entities/User/bob")
    assert g.status == 200 and g.header("ETag") == '"1"'
    assert g.json == {"entity_type": "User", "originator": {"id": "bob", "version": 1},
                      "payload": {"email": "bob@example.com"}, "deleted": False}
    assert c.get("/v1/entities/Other/bob").status == 404
    assert c.get("/v1/entities/User/nobody").status == 404

    # PUT: body version or If-Match; stale versions conflict and write nothing
    r = c.put("/v1/entities/User/bob", {"originator": {"version": 1},
                                        "payload": {"email": "b@x", "tags": ["a"]}})
    assert r.status == 200 and r.json == {"originator": {"id": "bob", "version": 2}}, r
    assert c.put("/v1/entities/User/bob", {"originator": {"version": 1},
                                           "payload": {}}).status == 409
    assert c.put("/v1/entities/User/bob", {"payload": {}}).status == 400
    assert c.put("/v1/entities/User/bob", {"originator": {"version": "2"},
                                           "payload": {}}).status == 400
    r = c.put("/v1/entities/User/bob", {"payload": {"email": "b@x", "tags": ["a"]}},
              headers={"If-Match": '"2"'})
    assert r.json["originator"]["version"] == 3, r  # unchanged: still appended
    assert c.get("/v1/entities/User/bob/history").json["versions"][2]["change"] == {}

    # PATCH: a merge patch on the latest, or at If-Match
    r = c.patch("/v1/entities/User/bob", {"tags": None, "age": 7})
    assert r.status == 200 and r.header("ETag") == '"4"', r
    assert r.json["payload"] == {"email": "b@x", "age": 7}
    assert c.patch("/v1/entities/User/bob", {"age": 8}, headers={"If-Match": "3"}).status == 409
    assert c.patch("/v1/entities/User/bob", [1]).status == 400

    # versions
    assert c.get("/v1/entities/User/bob", params={"version": 2}).json["payload"] == {
        "email": "b@x", "tags": ["a"]}
    assert c.get("/v1/entities/User/bob", params={"version": 5}).status == 404
    assert c.get("/v1/entities/User/bob", params={"version": 0}).status == 400

    # history
    h = c.get("/v1/entities/User/bob/history").json
    assert h["entity_type"] == "User" and h["id"] == "bob"
    assert [v["version"] for v in h["versions"]] == [1, 2, 3, 4]
    assert h["versions"][0]["event_type"] == "User.Created"
    assert h["versions"][3]["change"] == {"tags": None, "age": 7}
    assert [v["version"] for v in c.get("/v1/entities/User/bob/history",
                                        params={"from_version": 2, "limit": 2}
                                        ).json["versions"]] == [2, 3]
    assert c.get("/v1/entities/User/nobody/history").status == 404

    # delete
    assert c.delete("/v1/entities/User/bob", headers={"If-Match": '"1"'}).status == 409
    d = c.delete("/v1/entities/User/bob")
    assert d.status == 200 and d.json == {"originator": {"id": "bob", "version": 5}}
    assert c.delete("/v1/entities/User/bob").status == 404
    assert c.get("/v1/entities/User/bob").status == 404
    g = c.get("/v1/entities/User/bob", params={"deleted": "true"})
    assert g.status == 200 and g.json["deleted"] is True and g.header("ETag") == '"5"'
    assert g.json["payload"] == {"email": "b@x", "age": 7}
    assert c.put("/v1/entities/User/bob", {"originator": {"version": 5},
                                           "payload": {}}).status == 404

    # the crud store's view equals a replay of the stream
    doc, deleted, version = replay(es, "bob", "User")
    assert (doc, deleted, version) == (g.json["payload"], True, 5)

    m = check_metrics(crud.url)
    assert m.value("eskit_crud_cache_hits_total") > 0
    assert m.value("eskit_crud_cache_misses_total") >= 0
    assert m.series("eskit_http_requests_total", route="/v1/entities/{entity_type}/{id}")


def test_list_pages(stack):
    es, crud = stack
    c = crud.client()
    ids = [f"d{i:02d}" for i in range(25)]
    for i, doc_id in enumerate(ids):
        assert c.post("/v1/entities/Doc", {"payload": {"i": i},
                                           "originator": {"id": doc_id}}).status == 201
    for doc_id in ids[3:15]:
        assert c.delete(f"/v1/entities/Doc/{doc_id}").status == 200
    live = [d for d in ids if d not in ids[3:15]]
    seen, token, pages = [], None, 0
    while True:
        params = {"limit": 4}
        if token:
            params["page_token"] = token
        r = c.get("/v1/entities/Doc", params=params)
        assert r.status == 200, r
        assert len(r.json["results"]) <= 4
        seen += [x["originator"]["id"] for x in r.json["results"]]
        for x in r.json["results"]:
            assert x["payload"] == {"i": ids.index(x["originator"]["id"])}
        token = r.json["next_page_token"]
        pages += 1
        if token is None:
            break
    assert seen == live and pages <= 5
    r = c.get("/v1/entities/Doc", params={"limit": 100, "skip_payload": "true"})
    assert [x["originator"]["id"] for x in r.json["results"]] == live
    assert all("payload" not in x for x in r.json["results"])
    assert c.get("/v1/entities/Doc").json["next_page_token"] is not None
    assert c.get("/v1/entities/Doc", params={"limit": 101}).status == 400
    assert c.get("/v1/entities/Doc", params={"page_token": "garbage"}).status == 400
    assert c.get("/v1/entities/None").json == {"results": [], "next_page_token": None}


def test_types_and_schemas(stack):
    es, crud = stack
    c = crud.client()
    spec = {"entity_type": "Acct", "schema_spec": {"schema_version": 1, "json_schema": {
        "type": "object", "required": ["email"],
        "properties": {"email": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}}}
    r = c.post("/v1/types", {"spec": spec})
    assert r.status == 201 and r.json == {"spec": spec}, r
    assert c.post("/v1/types", {"spec": spec}).status == 409
    r = c.post("/v1/types", {"spec": {"entity_type": "Acct"}, "skip_duplicate": True})
    assert r.status == 200 and r.json == {"spec": spec}
    assert c.get("/v1/types/Acct").json == {"spec": spec}
    assert c.get("/v1/types/Nope").status == 404
    bad = {"entity_type": "Bad", "schema_spec": {"schema_version": 1,
                                                 "json_schema": {"type": "nope"}}}
    assert c.post("/v1/types", {"spec": bad}).status == 400
    bad["schema_spec"] = {"schema_version": 0, "json_schema": {}}
    assert c.post("/v1/types", {"spec": bad}).status == 400
    bad["schema_spec"] = {"schema_version": 1, "json_schema": {"$ref": "http://x.org/s"}}
    assert c.post("/v1/types", {"spec": bad}).status == 400

    r = c.post("/v1/entities/Acct", {"payload": {"age": -1}})
    assert r.status == 400, r
    paths = sorted(e["path"] for e in r.json["error"]["details"]["errors"])
    assert paths == ["/age", "/email"]
    r = c.post("/v1/entities/Acct", {"payload": {"email": "x"}, "originator": {"id": "a1"}})
    assert r.status == 201
    assert c.patch("/v1/entities/Acct/a1", {"age": "old"}).status == 400
    assert c.put("/v1/entities/Acct/a1", {"originator": {"version": 1},
                                          "payload": {}}).status == 400
    assert c.get("/v1/entities/Acct/a1").json["originator"]["version"] == 1

    # a new schema version takes effect at once; an old number conflicts
    assert c.put("/v1/types/Acct", {"spec": spec}).status == 409
    spec2 = {"entity_type": "Acct", "schema_spec": {"schema_version": 2, "json_schema": {
        "type": "object", "properties": {"age": {"type": "string"}}}}}
    r = c.put("/v1/types/Acct", {"spec": spec2})
    assert r.status == 200 and r.json == {"spec": spec2}, r
    assert c.get("/v1/types/Acct").json == {"spec": spec2}
    assert c.patch("/v1/entities/Acct/a1", {"age": "old"}).status == 200
    assert c.put("/v1/types/Nope", {"spec": spec2 | {"entity_type": "Nope"}}).status == 404

    assert c.post("/v1/types", {"spec": {"entity_type": "Plain"}}).status == 201
    listed = c.get("/v1/types").json["results"]
    assert listed == [spec2, {"entity_type": "Plain"}]
    assert c.get("/v1/types", params={"limit": 1}).json["results"] == [spec2]
    # the registry lives in the event store
    s = es.client().get("/v1/streams/Acct").json
    assert s["entity_type"] == "eskit.EntityType" and s["version"] == 2


def test_long_history_reads_fast(stack, services):
    es, crud = stack
    e, c = es.client(), crud.client()
    assert c.post("/v1/entities/Log", {"payload": {"n": 0},
                                       "originator": {"id": "short"}}).status == 201
    events = [{"originator": {"id": "long", "version": 1}, "event_type": "Log.Created",
               "payload": {"n": 0, "keep": "x"}}]
    events += [{"originator": {"id": "long", "version": v}, "event_type": "Log.Updated",
                "payload": {"n": v - 1}} for v in range(2, 10001)]
    for i in range(0, len(events), 1000):
        assert e.post("/v1/events", {"events": events[i:i + 1000]}).status == 201

    def timed(path, n=20, **kw):
        t = time.time()
        for _ in range(n):
            r = c.get(path, keep=True, **kw)
            assert r.status == 200, r
        return (time.time() - t) / n, r

    _, r = timed("/v1/entities/Log/long", n=1)  # the first read replays once
    assert r.json["payload"] == {"n": 9999, "keep": "x"}
    t_long, _ = timed("/v1/entities/Log/long")
    t_short, _ = timed("/v1/entities/Log/short")
    assert t_long < max(5 * t_short, 0.02), (t_long, t_short)
    r = c.get("/v1/entities/Log/long", params={"version": 5000})
    assert r.json["payload"] == {"n": 4999, "keep": "x"}

    # a fresh process (cold cache) starts from the snapshots
    crud2 = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    c2 = crud2.client()
    t = time.time()
    r = c2.get("/v1/entities/Log/long")
    assert r.status == 200 and r.json["originator"]["version"] == 10000
    assert time.time() - t < 0.5
    r = c2.get("/v1/entities/Log/long", params={"version": 5001})
    assert r.json["payload"] == {"n": 5000, "keep": "x"}


def test_sixteen_concurrent_writers(stack):
    es, crud = stack
    c = crud.client()
    assert c.post("/v1/entities/Counter", {"payload": {"total": 0, "by": {}},
                                           "originator": {"id": "ctr"}}).status == 201
    successes = [0] * 16
    errors = []

    def worker(k):
        cl = crud.client()
        try:
            while successes[k] < 20:
                g = cl.get("/v1/entities/Counter/ctr", keep=True)
                assert g.status == 200, g
                doc, version = g.json["payload"], g.json["originator"]["version"]
                doc["total"] += 1
                doc["by"][str(k)] = doc["by"].get(str(k), 0) + 1
                r = cl.put("/v1/entities/Counter/ctr",
                           {"originator": {"version": version}, "payload": doc}, keep=True)
                if r.status == 200:
                    assert r.json["originator"]["version"] == version + 1
                    successes[k] += 1
                else:
                    assert r.status == 409, r
        except Exception as ex:  # reported by the main thread
            errors.append(ex)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    total = sum(successes)
    assert total == 16 * 20
    g = c.get("/v1/entities/Counter/ctr").json
    assert g["originator"]["version"] == 1 + total
    assert g["payload"]["total"] == total
    assert g["payload"]["by"] == {str(k): 20 for k in range(16)}
    doc, deleted, version = replay(es, "ctr", "Counter")
    assert (doc, deleted, version) == (g["payload"], False, 1 + total)


def test_event_store_down_gives_503(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend()})
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url})
    assert crud.wait_ready()
    es.stop()
    c = crud.client()
    r = c.get("/v1/entities/User/x")
    assert r.status == 503 and r.json["error"]["code"] == "unavailable", r
    assert c.get("/readyz").status == 503
    es.start()
    assert crud.wait_ready()
    assert c.get("/v1/entities/User/x").status == 404


def test_token_is_sent_to_the_event_store(backend, services):
    env = {"ESKIT_API_TOKEN": "s3cret"}
    es = services("event-store", dict(env, ESKIT_DATABASE_URL=backend()))
    crud = services("crud-store", dict(env, ESKIT_EVENT_STORE_URL=es.url))
    assert crud.wait_ready(), crud.log()
    assert crud.client().get("/v1/entities/User/x").status == 401
    c = crud.client(token="s3cret")
    r = c.post("/v1/entities/User", {"payload": {"a": 1}, "originator": {"id": "x"}})
    assert r.status == 201, r
    assert c.get("/v1/entities/User/x").json["payload"] == {"a": 1}
    assert c.patch("/v1/entities/User/x", {"b": 2},
                   headers={"Content-Type": "application/merge-patch+json"}).status == 200
    assert es.client(token="s3cret").get("/v1/streams/x").json["version"] == 2
