"""Documents with large histories (issue 12): a document of about 1 MB
replaced 65 times has more than 64 MiB of events. Reads page by bytes as well
as by count, history reads only what it returns, a snapshot is saved and
fits, and a write that would make a document larger than a request body may
be is refused (413) without writing. Both back ends."""
from crud_fixtures import start_crud_env

BLOB = 1_040_000  # 66 of them pass the http client's 64 MiB cap
VERSIONS = 66


def big(k):
    return {"blob": chr(ord("a") + k % 26) * BLOB, "k": k}


def write_history(env, oid):
    assert env.c.post("/v1/entities/Big", {"payload": big(0), "originator": {"id": oid}}
                      ).status == 201
    for v in range(1, VERSIONS):
        r = env.c.put(f"/v1/entities/Big/{oid}", {"originator": {"version": v},
                                                  "payload": big(v)})
        assert r.status == 200, r


def check_reads(c, oid):
    r = c.get(f"/v1/entities/Big/{oid}")
    assert r.status == 200, r
    assert r.json["originator"]["version"] == VERSIONS and r.json["payload"] == big(VERSIONS - 1)
    r = c.get(f"/v1/entities/Big/{oid}", params={"version": 30})
    assert r.status == 200 and r.json["payload"] == big(29), r
    r = c.get(f"/v1/entities/Big/{oid}/history", params={"limit": 1})
    assert r.status == 200, r
    assert [v["version"] for v in r.json["versions"]] == [1]
    r = c.get(f"/v1/entities/Big/{oid}/history", params={"from_version": 60, "limit": 100})
    assert r.status == 200, r
    assert [v["version"] for v in r.json["versions"]] == list(range(60, VERSIONS + 1))


def test_a_large_history_stays_readable(backend, services):
    env = start_crud_env(backend, services)
    write_history(env, "big1")
    check_reads(env.c, "big1")
    # a cold process replays the whole history (over 64 MiB of events) in
    # pages that fit, then saves a snapshot that fits the event store
    env.crud.kill9()
    crud2 = services("crud-store", {"ESKIT_EVENT_STORE_URL": env.es.url})
    assert crud2.wait_ready()
    c = crud2.client(timeout=120)
    check_reads(c, "big1")
    snap = env.e.get("/v1/snapshots/big1")
    assert snap.status == 200, snap
    assert snap.json["version"] == VERSIONS
    r = c.patch("/v1/entities/Big/big1", {"k": "patched"})
    assert r.status == 200 and r.json["originator"]["version"] == VERSIONS + 1, r


def test_a_document_may_not_grow_past_the_body_limit(crud_store):
    env = crud_store
    oid = env.create("Big", {"a": "x" * 600_000})
    head = env.head_id()
    r = env.c.patch(f"/v1/entities/Big/{oid}", {"b": "y" * 600_000})
    assert r.status == 413, r
    assert r.json["error"]["code"] == "payload_too_large"
    assert "ESKIT_MAX_BODY_BYTES" in r.json["error"]["message"]
    assert env.head_id() == head
    assert env.c.patch(f"/v1/entities/Big/{oid}", {"b": "y" * 100_000}).status == 200
