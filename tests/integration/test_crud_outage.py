"""The CRUD store when its event store goes away (SPEC §1, §2): /v1 calls
answer 503 `unavailable` promptly and /readyz 503; when the event store is
back (same database, same port) the CRUD store recovers by itself, without a
restart. On both back ends."""
import time

from eskit import Client, free_port

from crud_fixtures import assert_error, poll, start_crud_env

U = "/v1/entities/User"


def timed(fn):
    t = time.time()
    r = fn()
    return r, time.time() - t


def test_event_store_outage_and_recovery(backend, services):
    env = start_crud_env(backend, services)
    oid = env.create("User", {"a": 1}, "before")
    assert env.c.put(f"{U}/before", {"originator": {"version": 1},
                                     "payload": {"a": 2}}).status == 200
    r = env.read("User", oid)
    assert r.status == 200 and r.json["payload"] == {"a": 2}, r
    port = env.es.port
    assert env.es.stop() == 0, env.es.log()

    c = Client(env.crud.url, timeout=15)

    # /readyz turns 503 (with the error body) within a few seconds
    ready = poll(lambda: c.get("/readyz").status == 503, timeout=10)
    assert ready, c.get("/readyz")
    assert_error(c.get("/readyz"), 503)
    assert c.get("/healthz").status == 200

    # every /v1 call answers 503 unavailable, each within a few seconds
    calls = [
        ("GET latest", lambda: c.get(f"{U}/before")),
        ("GET version", lambda: c.get(f"{U}/before", params={"version": 1})),
        ("POST", lambda: c.post(U, {"payload": {"x": 1}, "originator": {"id": "during"}})),
        ("PUT", lambda: c.put(f"{U}/before", {"originator": {"version": 2},
                                              "payload": {"a": 3}})),
        ("PATCH", lambda: c.patch(f"{U}/before", {"a": 4})),
        ("DELETE", lambda: c.delete(f"{U}/before")),
        ("list", lambda: c.get(U)),
        ("history", lambda: c.get(f"{U}/before/history")),
        ("types", lambda: c.get("/v1/types")),
        ("register", lambda: c.post("/v1/types", {"spec": {"entity_type": "During"}})),
    ]
    for name, fn in calls:
        r, dt = timed(fn)
        assert dt < 5, (name, dt)
        assert r.status == 503, (name, r)
        assert_error(r, 503)

    # the event store comes back on the same database and port
    services("event-store", {"ESKIT_DATABASE_URL": env.db}, port=port)
    assert poll(lambda: c.get("/readyz").status == 200, timeout=20), c.get("/readyz")
    r = poll(lambda: (lambda x: x if x.status == 200 else None)(c.get(f"{U}/before")),
             timeout=10)
    assert r and r.json["payload"] == {"a": 2}, r
    assert r.json["originator"] == {"id": oid, "version": 2}
    # nothing the failed calls tried was written
    assert env.events(oid)[-1]["originator"]["version"] == 2
    assert env.events("during") == []
    assert c.get("/v1/types/During").status == 404
    # and writes work again
    r = c.put(f"{U}/before", {"originator": {"version": 2}, "payload": {"a": 3}})
    assert r.status == 200 and r.json["originator"]["version"] == 3, r
    assert c.post(U, {"payload": {"x": 1}, "originator": {"id": "during"}}).status == 201
    assert c.get(f"{U}/during").json["payload"] == {"x": 1}


def test_crud_store_starts_without_its_event_store(backend, services):
    port = free_port()
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": f"http://127.0.0.1:{port}"})
    c = Client(crud.url, timeout=15)
    assert c.get("/healthz").status == 200
    assert_error(c.get("/readyz"), 503)
    r, dt = timed(lambda: c.get(U))
    assert dt < 5
    assert_error(r, 503)
    assert_error(c.post(U, {"payload": {}}), 503)
    # the event store starts: the CRUD store becomes ready by itself
    services("event-store", {"ESKIT_DATABASE_URL": backend()}, port=port)
    assert poll(lambda: c.get("/readyz").status == 200, timeout=20), c.get("/readyz")
    r = c.post(U, {"payload": {"a": 1}, "originator": {"id": "late"}})
    assert r.status == 201, r
    assert c.get(f"{U}/late").json["payload"] == {"a": 1}
