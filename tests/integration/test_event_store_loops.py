"""The event store's event loops (README, "No thread waits for a commit"): a
short read starts on its loop and moves to a worker when no open database
connection is free. With a pool of one connection, concurrent readers and
writers keep finding it taken; every answer must still be whole and right."""
from eskit import Client, append_one_by_one, run_threads


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

    run_threads([(reader, n) for n in range(12)] +
                [(append_one_by_one, es.url, f"w{n}", 40, failures) for n in range(4)])
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    r = c.get("/metrics")
    assert r.status == 200
