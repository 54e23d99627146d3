"""POST /v1/entities/{type}/_bulk (SPEC §4, issue 14): many creates, puts,
patches and deletes in one atomic event-store batch, each checked as the
single request is; on any failure nothing is written and details.index names
the operation. Runs on both back ends (the `backend` fixture)."""
import pytest

from crud_fixtures import start_crud_env


@pytest.fixture
def env(backend, services):
    return start_crud_env(backend, services, crud_extra_env={"ESKIT_DATABASE_URL": backend()})


def bulk(c, etype, *ops):
    return c.post(f"/v1/entities/{etype}/_bulk", {"operations": list(ops)})


def test_mixed_operations(env):
    c = env.c
    assert env.create("B", {"n": 1}, "b1") == "b1"
    assert env.create("B", {"n": 2}, "b2") == "b2"
    r = bulk(c, "B",
             {"op": "create", "id": "b3", "payload": {"n": 3}},
             {"op": "create", "payload": {"n": 4}},
             {"op": "put", "id": "b1", "version": 1, "payload": {"n": 10}},
             {"op": "patch", "id": "b2", "patch": {"m": True}},
             {"op": "patch", "id": "b3", "patch": {"n": 30}, "version": 1},
             {"op": "delete", "id": "b2"})
    assert r.status == 200, r
    res = r.json["results"]
    assert [x["originator"]["version"] for x in res] == [1, 1, 2, 2, 2, 3]
    assert [x["originator"]["id"] for x in res][:1] == ["b3"]
    b4 = res[1]["originator"]["id"]
    assert env.read("B", "b1").json["payload"] == {"n": 10}
    assert env.read("B", "b2").status == 404
    assert env.read("B", "b2", deleted="true").json["payload"] == {"n": 2, "m": True}
    assert env.read("B", "b3").json["payload"] == {"n": 30}
    assert env.read("B", b4).json["payload"] == {"n": 4}
    # one batch: the four streams' events sit next to each other in the log
    ids = [e["event"]["originator"]["id"] for e in env.e.get(
        "/v1/logs", params={"from_id": 1, "size": 100}).json["results"]]
    assert ids[-6:] == ["b3", b4, "b1", "b2", "b3", "b2"]
    # the query index holds the result
    r = c.post("/v1/entities/B/_find", {"selector": {"n": {"$gte": 4}}, "sort": [{"n": "asc"}]})
    assert [x["payload"]["n"] for x in r.json["results"]] == [4, 10, 30]


def test_all_or_nothing(env):
    c = env.c
    env.create("B", {"n": 1}, "k1")
    head = env.head_id()
    r = bulk(c, "B",
             {"op": "create", "id": "k2", "payload": {}},
             {"op": "patch", "id": "k1", "patch": {"x": 1}},
             {"op": "put", "id": "k1", "version": 1, "payload": {}})  # k1 is at 2 by then
    assert r.status == 409, r
    assert r.json["error"]["details"]["index"] == 2
    assert env.head_id() == head
    assert env.read("B", "k2").status == 404
    assert env.read("B", "k1").json["originator"]["version"] == 1


def test_schema_checked_per_operation(env):
    c = env.c
    r = c.post("/v1/types", {"spec": {"entity_type": "S", "schema_spec": {
        "schema_version": 1, "json_schema": {"type": "object", "required": ["email"]}}}})
    assert r.status == 201, r
    r = bulk(c, "S", {"op": "create", "id": "s1", "payload": {"email": "a"}},
             {"op": "create", "id": "s2", "payload": {}})
    assert r.status == 400, r
    assert r.json["error"]["details"]["index"] == 1
    assert r.json["error"]["details"]["errors"], r
    r = bulk(c, "S", {"op": "create", "id": "s1", "payload": {"email": "a"}},
             {"op": "patch", "id": "s1", "patch": {"email": None}})
    assert r.status == 400 and r.json["error"]["details"]["index"] == 1, r
    assert env.read("S", "s1").status == 404


def test_thousand_creates(env):
    ops = [{"op": "create", "payload": {"i": i}} for i in range(1000)]
    r = bulk(env.c, "Many", *ops)
    assert r.status == 200, r
    assert len(r.json["results"]) == 1000
    r = env.c.post("/v1/entities/Many/_find", {"selector": {"i": {"$gte": 990}}, "limit": 100})
    assert sorted(x["payload"]["i"] for x in r.json["results"]) == list(range(990, 1000))


def test_idempotency_key(env, services):
    import threading
    c = env.c
    env.create("B", {"n": 1}, "i1")
    body = {"operations": [{"op": "create", "payload": {"a": 1}},
                           {"op": "patch", "id": "i1", "patch": {"n": 2}}]}
    hdr = {"Idempotency-Key": "bulk-key-1"}
    r1 = c.post("/v1/entities/B/_bulk", body, headers=hdr)
    assert r1.status == 200, r1
    head = env.head_id()
    r2 = c.post("/v1/entities/B/_bulk", body, headers=hdr)
    assert r2.status == 200 and r2.json == r1.json, (r1, r2)
    assert env.head_id() == head
    assert env.read("B", "i1").json["originator"]["version"] == 2
    r = c.post("/v1/entities/B/_bulk", {"operations": [{"op": "create", "payload": {}}]},
               headers=hdr)
    assert r.status == 422, r
    # through another replica, and racing repeats: one write, one answer
    other = services("crud-store", {"ESKIT_EVENT_STORE_URL": env.es.url,
                                    "ESKIT_DATABASE_URL": env.crud.env["ESKIT_DATABASE_URL"]
                                    if "postgres" in env.crud.env["ESKIT_DATABASE_URL"]
                                    else env.crud.env["ESKIT_DATABASE_URL"] + ".2"})
    assert other.wait_ready(), other.log()
    r3 = other.client().post("/v1/entities/B/_bulk", body, headers=hdr)
    assert r3.status == 200 and r3.json == r1.json, r3
    race = {"operations": [{"op": "create", "payload": {"r": i}} for i in range(5)]}
    answers = []

    def go(client):
        answers.append(client.post("/v1/entities/B/_bulk", race,
                                   headers={"Idempotency-Key": "bulk-race"}))

    head = env.head_id()
    ts = [threading.Thread(target=go, args=(cl,))
          for cl in (env.crud.client(), other.client(), env.crud.client(), other.client())]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(a.status == 200 for a in answers), answers
    assert all(a.json == answers[0].json for a in answers), answers
    assert env.head_id() == head + 6  # five documents and the key's record
