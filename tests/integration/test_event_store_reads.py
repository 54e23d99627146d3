"""Stream reads gathered into batches (README, "Reads in batches"): many
concurrent GET /v1/events/{id} with different streams and ranges, while
appends go on, are answered from one pipeline per batch. Each answer must be
exactly its own read: its stream, its range, its limit, nothing of a
neighbour's."""
import random
import threading

import pytest

from eskit import Client

STREAMS = 8


def check_batched_reads(es):
    c = Client(es.url)
    sizes = {}
    for k in range(STREAMS):
        n = k + 3
        r = c.post("/v1/events", {"events": [
            {"originator": {"id": f"r{k}"}, "event_type": "R.Happened", "payload": {"k": k, "v": v}}
            for v in range(1, n + 1)]})
        assert r.status == 201, r
        sizes[f"r{k}"] = n
    failures = []

    def reader(seed):
        rnd = random.Random(seed)
        rc = Client(es.url)
        for _ in range(60):
            oid = rnd.choice(list(sizes) + ["r-none"])
            n = sizes.get(oid, 0)
            frm, to, limit = rnd.randint(1, n + 2), rnd.randint(1, n + 3), rnd.randint(1, 12)
            r = rc.get(f"/v1/events/{oid}?from_version={frm}&to_version={to}&limit={limit}")
            want = [v for v in range(frm, min(to, n) + 1)][:limit]
            got = r.json and [(e["originator"]["id"], e["originator"]["version"], e["payload"])
                              for e in r.json.get("events", [])]
            expect = [(oid, v, {"k": int(oid[1:]), "v": v}) for v in want]
            if r.status != 200 or got != expect:
                failures.append(f"{oid} {frm}..{to} limit {limit}: {r.status} {r.body[:300]!r}")

    def writer(w):
        wc = Client(es.url)
        for i in range(30):
            r = wc.post("/v1/events", {"originator": {"id": f"w{w}"}, "event_type": "W.Happened",
                                       "payload": {"i": i}})
            if r.status != 201:
                failures.append(f"append: {r.status} {r.body[:200]!r}")

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(16)]
    threads += [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    for w in range(2):
        assert [e["originator"]["version"] for e in c.get(f"/v1/events/w{w}").json["events"]] == \
            list(range(1, 31))


@pytest.mark.parametrize("loops", ["4", "0"], ids=["loops", "thread-per-connection"])
def test_concurrent_reads_each_get_their_own_answer(backend, services, loops):
    es = services("event-store", {"ESKIT_DATABASE_URL": backend(), "ESKIT_HTTP_LOOPS": loops,
                                  "ESKIT_DB_POOL_SIZE": "2"})
    assert es.wait_ready(), es.log()
    check_batched_reads(es)
