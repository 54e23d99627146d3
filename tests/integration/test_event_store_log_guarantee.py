"""The log guarantee (SPEC §3): a reader that reads `from_id = last seen + 1`
while many writers append concurrently sees every acknowledged entry exactly
once, in strictly ascending id order, and never an id below one it has seen.
Checked on both back ends, and on PostgreSQL with two event-store replicas on
one database."""
import random
import threading
import time

from eskit import Client

N_WRITERS = 16
EVENTS_PER_WRITER = 150          # 16 x 150 = 2400 events per run
RUN_DEADLINE = 90                # seconds; a run normally takes a few seconds


def ev(oid, etype, version=None, payload=None):
    e = {"originator": {"id": oid}, "event_type": etype,
         "payload": payload if payload is not None else {}}
    if version is not None:
        e["originator"]["version"] = version
    return e


class Run:
    """Shared state of one guarantee run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}          # log_id -> (originator id, version)
        self.stream_len = {}     # originator id -> highest acknowledged version
        self.errors = []         # problems seen by writers / the reader
        self.seen = []           # ids in the order the reader saw them
        self.seen_events = {}    # log_id -> (originator id, version) as read
        self.reads = 0
        self.reads_during_writes = 0
        self.writers_done = threading.Event()
        self.target = None       # id the reader must reach once writers are done


def writer(run, urls, t, seed):
    rnd = random.Random(seed)
    streams = [f"lg-{t}-a", f"lg-{t}-b"]
    version = {s: 0 for s in streams}
    written = 0
    i = 0
    deadline = time.time() + RUN_DEADLINE
    while written < EVENTS_PER_WRITER and time.time() < deadline:
        url = urls[(t + i) % len(urls)]
        i += 1
        explicit = rnd.random() < 0.5
        if rnd.random() < 0.5:
            n = 1
        else:
            n = rnd.randint(2, 6)
        n = min(n, EVENTS_PER_WRITER - written)
        events, expect = [], []
        for k in range(n):
            s = rnd.choice(streams)
            version[s] += 1
            expect.append((s, version[s]))
            etype = "Order.Created" if k % 2 else "User.Created"
            events.append(ev(s, etype, version[s] if explicit else None,
                             {"t": t, "k": k}))
        body = events[0] if n == 1 and rnd.random() < 0.7 else {"events": events}
        try:
            r = Client(url, timeout=30).post("/v1/events", body)
        except OSError as e:
            with run.lock:
                run.errors.append(f"writer {t}: POST {body} -> {e!r}")
            return
        if r.status != 201:
            with run.lock:
                run.errors.append(f"writer {t}: POST {body} -> {r}")
            return
        results = r.json["results"] if "results" in r.json else [r.json]
        got = [(x["event"]["originator"]["id"], x["event"]["originator"]["version"])
               for x in results]
        with run.lock:
            if got != expect:
                run.errors.append(f"writer {t}: appended {got}, expected {expect}")
            for x, (s, v) in zip(results, got):
                lid = x["log_id"]
                if lid in run.acked:
                    run.errors.append(f"log_id {lid} acknowledged twice: "
                                      f"{run.acked[lid]} and {(s, v)}")
                run.acked[lid] = (s, v)
                run.stream_len[s] = max(run.stream_len.get(s, 0), v)
        written += n


def reader(run, urls, seed):
    rnd = random.Random(seed)
    last = 0
    i = 0
    deadline = time.time() + RUN_DEADLINE + 30
    try:
        while time.time() < deadline:
            url = urls[i % len(urls)]
            i += 1
            done = run.writers_done.is_set()
            params = {"from_id": last + 1, "size": rnd.randint(50, 200)}
            if rnd.random() < 0.5:
                params["wait"] = 1
            r = Client(url, timeout=30).get("/v1/logs", params=params)
            if r.status != 200:
                run.errors.append(f"reader: GET /v1/logs {params} on {url} -> {r}")
                return
            run.reads += 1
            if not done:
                run.reads_during_writes += 1
            ids = [x["id"] for x in r.json["results"]]
            for x in r.json["results"]:
                if x["id"] <= last:
                    run.errors.append(
                        f"reader: got id {x['id']} after having seen {last} "
                        f"(GET /v1/logs {params} on {url} -> ids {ids})")
                    return
                last = x["id"]
                run.seen.append(x["id"])
                o = x["event"]["originator"]
                run.seen_events[x["id"]] = (o["id"], o["version"])
            if ids and r.json["next_from_id"] != ids[-1] + 1:
                run.errors.append(f"reader: next_from_id {r.json['next_from_id']} after "
                                  f"last id {ids[-1]} with selector * ({params})")
            if r.json["next_from_id"] < params["from_id"]:
                run.errors.append(f"reader: next_from_id went back: {params} -> "
                                  f"{r.json['next_from_id']}")
            if done and run.target is not None and last >= run.target:
                return
        run.errors.append(f"reader: did not reach id {run.target} in time "
                          f"(last seen {last})")
    except Exception as e:  # noqa: BLE001 - reported as a test failure
        run.errors.append(f"reader: {e!r}")


def run_guarantee(write_urls, read_urls, logs):
    run = Run()
    seed = random.randrange(1 << 30)
    t0 = time.time()
    rt = threading.Thread(target=reader, args=(run, read_urls, seed))
    rt.start()
    ws = [threading.Thread(target=writer, args=(run, write_urls, t, seed + t + 1))
          for t in range(N_WRITERS)]
    [w.start() for w in ws]
    [w.join() for w in ws]
    heads = [Client(u).get("/v1/logs", params={"from_id": 1, "size": 1}).json["head_id"]
             for u in read_urls]
    run.target = max([max(run.acked, default=0)] + heads)
    run.writers_done.set()
    rt.join(RUN_DEADLINE + 60)
    elapsed = time.time() - t0
    ctx = f"(seed {seed}, {elapsed:.1f}s)\n" + "\n".join(
        f"--- log of {n} ---\n{lg()[-3000:]}" for n, lg in logs)

    assert not run.errors, "\n".join(run.errors[:20]) + ctx
    assert len(run.acked) == N_WRITERS * EVENTS_PER_WRITER, ctx
    # strictly ascending, each exactly once
    assert all(a < b for a, b in zip(run.seen, run.seen[1:])), ctx
    missing = sorted(set(run.acked) - set(run.seen))
    extra = sorted(set(run.seen) - set(run.acked))
    assert not missing, (f"{len(missing)} acknowledged entries never seen by the reader: "
                         f"{missing[:50]}" + ctx)
    assert not extra, f"reader saw entries nobody acknowledged: {extra[:50]}" + ctx
    # each log entry carries the event that was acknowledged with its id
    wrong = [(lid, run.seen_events[lid], run.acked[lid]) for lid in run.seen
             if run.seen_events[lid] != run.acked[lid]]
    assert not wrong, f"log entries with the wrong event: {wrong[:20]}" + ctx
    # every stream: versions 1..N without gaps
    c = Client(read_urls[0])
    for s, n in sorted(run.stream_len.items()):
        r = c.get(f"/v1/events/{s}")
        assert r.status == 200, r
        versions = [e["originator"]["version"] for e in r.json["events"]]
        assert versions == list(range(1, n + 1)), (s, versions)
    assert sum(run.stream_len.values()) == len(run.acked)
    return run, elapsed


def test_log_guarantee_concurrent_writers(event_store):
    run, elapsed = run_guarantee([event_store.url], [event_store.url],
                                 [("event-store", event_store.log)])
    print(f"{len(run.acked)} events, {run.reads} reads "
          f"({run.reads_during_writes} while writing) in {elapsed:.1f}s")
    assert run.reads_during_writes > 0


def test_log_guarantee_two_replicas_on_postgres(pg, services):
    url = pg.new_database()
    a = services("event-store", {"ESKIT_DATABASE_URL": url})
    b = services("event-store", {"ESKIT_DATABASE_URL": url})
    assert a.wait_ready(), a.log()
    assert b.wait_ready(), b.log()
    run, elapsed = run_guarantee([a.url, b.url], [a.url, b.url],
                                 [("replica A", a.log), ("replica B", b.log)])
    print(f"{len(run.acked)} events, {run.reads} reads "
          f"({run.reads_during_writes} while writing) in {elapsed:.1f}s")
    assert run.reads_during_writes > 0
