"""Reads answered from the CRUD store's cache are never stale (docs/crud-store.md,
"Reads and the log"), on both back ends.

A read waits until the cache has caught up with the event store's log to a
head read after the read began. So a read through one CRUD replica sees every
write acknowledged before it through another replica, or appended straight
to the event store; a log too far ahead is skipped (every entry re-checked),
and a log that went back (the event store on a new database) empties the
cache."""
import re

from crud_fixtures import assert_error, etag_version, start_crud_env

D = "/v1/entities/Doc"


def counter(client, name):
    r = client.get("/metrics")
    assert r.status == 200, r
    m = re.search(rf"^{name} (\S+)$", r.body, re.M)
    assert m, f"{name} missing"
    return float(m.group(1))


def test_read_after_write_across_replicas(crud_store, services):
    other = services("crud-store", {"ESKIT_EVENT_STORE_URL": crud_store.es.url})
    assert other.wait_ready(), other.log()
    a, b = crud_store.c, other.client()
    oid = crud_store.create("Doc", {"n": 0}, "fresh")
    assert b.get(f"{D}/{oid}").json["payload"] == {"n": 0}   # now cached in b

    # writes alternate between the replicas; each read goes to the other one
    version = 1
    for n in range(1, 101):
        writer, reader = (a, b) if n % 2 else (b, a)
        if n % 3:
            r = writer.put(f"{D}/{oid}", {"originator": {"version": version},
                                          "payload": {"n": n}})
        else:
            r = writer.patch(f"{D}/{oid}", {"n": n})
        assert r.status == 200, r
        version += 1
        g = reader.get(f"{D}/{oid}")
        assert g.status == 200, g
        assert g.json["originator"]["version"] == version, (n, g)
        assert etag_version(g) == version
        assert g.json["payload"] == {"n": n}, (n, g)

    # a delete through a: b answers 404 at once, and the deleted document on request
    assert a.delete(f"{D}/{oid}").status == 200
    assert_error(b.get(f"{D}/{oid}"), 404)
    g = b.get(f"{D}/{oid}", params={"deleted": "true"})
    assert g.status == 200 and g.json["deleted"] is True, g

    # an id b has read as missing, then created through a
    assert_error(b.get(f"{D}/later"), 404)
    assert_error(b.get(f"{D}/later"), 404)
    crud_store.create("Doc", {"born": True}, "later")
    g = b.get(f"{D}/later")
    assert g.status == 200 and g.json["payload"] == {"born": True}, g


def test_events_appended_to_the_event_store_are_seen(crud_store):
    env = crud_store
    env.create("Doc", {"a": 1}, "direct")
    assert env.read("Doc", "direct").json["payload"] == {"a": 1}
    env.append("direct", "Doc.Updated", {"b": 2}, version=2)
    g = env.read("Doc", "direct")
    assert g.json["originator"]["version"] == 2 and g.json["payload"] == {"a": 1, "b": 2}, g
    # an event of another name moves the version, not the document
    env.append("direct", "Doc.Annotated", {"note": "x"}, version=3)
    g = env.read("Doc", "direct")
    assert g.json["originator"]["version"] == 3 and g.json["payload"] == {"a": 1, "b": 2}, g
    # a PUT naming the version read before the direct append is refused
    r = env.c.put(f"{D}/direct", {"originator": {"version": 2}, "payload": {}})
    assert_error(r, 409)
    env.append("direct", "Doc.Deleted", {}, version=4)
    assert_error(env.read("Doc", "direct"), 404)


def test_a_long_backlog_is_skipped_not_misread(crud_store):
    env = crud_store
    env.create("Doc", {"v": 1}, "behind")
    env.create("Doc", {"v": 1}, "untouched")
    assert env.read("Doc", "behind").json["payload"] == {"v": 1}
    assert env.read("Doc", "untouched").json["payload"] == {"v": 1}
    skips = counter(env.c, "eskit_crud_log_skips_total")

    # 2,498 events of other streams, with an update of "behind" in the middle
    for i in range(3):
        events = [{"originator": {"id": f"noise-{i}-{k}"}, "event_type": "Noise.Happened",
                   "payload": {"k": k}} for k in range(999 if i < 2 else 500)]
        if i == 1:
            events.insert(500, {"originator": {"id": "behind", "version": 2},
                                "event_type": "Doc.Updated", "payload": {"v": 2}})
        r = env.e.post("/v1/events", {"events": events})
        assert r.status == 201, r

    g = env.read("Doc", "behind")
    assert g.json["originator"]["version"] == 2 and g.json["payload"] == {"v": 2}, g
    assert env.read("Doc", "untouched").json["payload"] == {"v": 1}
    assert counter(env.c, "eskit_crud_log_skips_total") >= skips + 1
    # after the skip, reads are answered from the log again
    env.append("behind", "Doc.Updated", {"v": 3}, version=3)
    assert env.read("Doc", "behind").json["payload"] == {"v": 3}


def test_an_event_store_on_a_new_database_empties_the_cache(backend, services):
    env = start_crud_env(backend, services)
    env.create("Doc", {"from": "old"}, "x")
    for i in range(5):
        env.create("Doc", {"i": i})
    assert env.read("Doc", "x").json["payload"] == {"from": "old"}
    port = env.es.port
    assert env.es.stop() == 0, env.es.log()

    es = services("event-store", {"ESKIT_DATABASE_URL": backend()}, port=port)
    assert es.wait_ready(), es.log()
    r = es.client().post("/v1/events", {"originator": {"id": "x"}, "event_type": "Doc.Created",
                                         "payload": {"from": "new"}})
    assert r.status == 201, r
    g = env.read("Doc", "x")
    assert g.status == 200 and g.json["payload"] == {"from": "new"}, g
