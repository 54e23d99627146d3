"""The event store's event loops (README, "No thread waits for a commit"): a
short read starts on its loop and moves to a worker when no open database
connection is free. With a pool of one connection, concurrent readers and
writers keep finding it taken; every answer must still be whole and right."""
import threading

from eskit import Client


def test_quick_reads_with_one_pooled_connection(backend, services):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend(), "ESKIT_DB_POOL_SIZE": "1"})
    assert es.wait_ready(), es.log()
    c = Client(es.url)
    for n in range(4):
        r = c.post("/v1/events", {"events": [
            {"originator": {"id": f"q{n}"}, "event_type": "Q.Happened", "payload": {"i": i}}
            for i in range(5)]})
        assert r.status == 201, r
    assert c.put("/v1/snapshots/q0", {"version": 5, "payload": {"s": 1}}).status == 204
    failures = []

    def reader(n):
        rc = Client(es.url)
        for k in range(40):
            oid = f"q{(n + k) % 4}"
            for path, check in (
                    (f"/v1/events/{oid}",
                     lambda j: [e["payload"]["i"] for e in j["events"]] == list(range(5))),
                    (f"/v1/streams/{oid}", lambda j: j["version"] == 5),
                    ("/v1/snapshots/q0", lambda j: j["version"] == 5)):
                r = rc.get(path)
                if r.status != 200 or not check(r.json):
                    failures.append(f"{path}: {r.status} {r.body[:200]!r}")

    def writer(n):
        wc = Client(es.url)
        for k in range(40):
            r = wc.post("/v1/events", {"originator": {"id": f"w{n}"}, "event_type": "W.Happened",
                                       "payload": {"k": k}})
            if r.status != 201:
                failures.append(f"append: {r.status} {r.body[:200]!r}")

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(12)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    r = c.get("/metrics")
    assert r.status == 200
