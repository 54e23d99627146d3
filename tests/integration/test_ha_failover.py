"""Losing the database's primary (SPEC §8), on a real pg_auto_failover
formation (ha.Formation: a monitor, a primary and a synchronous secondary on
loopback).

The four services run on multi-host URLs: writes on
`node1,node2?target_session_attrs=read-write`, the event stores' reads on the
secondary (ESKIT_DATABASE_READ_URL `node2,node1?...prefer-standby`). Two
event-store replicas: writers use the first; readers (a tailing SSE reader, a
long-polling reader, the metrics consumer) use the second, which learns of
the first one's commits only through LISTEN/NOTIFY on the primary and reads
them from the standby. Under load (8 writers appending with event_ids, CRUD
writers with Idempotency-Keys, all retrying every failure with the same
request; probes of every service) the primary's node is SIGKILLed. Then,
after the promotion:

- every acknowledged write is in the log exactly once, under the log id it
  was acknowledged with, and every resend of it answers 200 with its
  original answer (none 409); streams have no gaps;
- the SSE reader and the long-polling reader saw every entry of the log, in
  order (the SSE stream without a reconnection);
- the CRUD store's query index, on the formation and read on the standby,
  shows each acknowledged CRUD write to the `_find` that follows it (under
  the load, across the failover) and holds them all once afterwards;
- the metrics consumer reaches the head;
- each service answered again within 10 s of the promotion, by itself.

Then the old primary rejoins as a secondary and the same runs again with a
failover back. The counts, retries and recovery times are printed.
"""
import json
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from eskit import Client, free_port
from ha import Formation

RECOVER = 10.0          # SPEC §8: services answer again within this of the promotion
LOAD_BEFORE = 4.0       # seconds of load before the kill
LOAD_AFTER = 3.0        # seconds of load after every service answered again
N_WRITERS = 8
N_CRUD = 2
T0 = time.monotonic()  # for the times printed: set when the formation is built


@pytest.fixture(scope="module")
def formation():
    if os.geteuid() != 0 and not os.access("/var/run/postgresql", os.W_OK):
        pytest.skip("pg_autoctl's servers put their sockets in /var/run/postgresql: run as "
                    "root (as make test in CI does) or as a user that may write there")
    global T0
    T0 = time.monotonic()
    f = Formation()
    try:
        f.start()
        yield f
    finally:
        f.destroy()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}           # event_id -> (log_id, stream, version, status)
        self.bodies = {}          # event_id -> the request body (for resends)
        self.answers = {}         # event_id -> the first 2xx answer's results
        self.retries = 0
        self.unknown = 0          # 503s saying commit_outcome unknown
        self.replayed = 0         # resends answered 200: it had committed
        self.statuses = {}        # status (or exception name) -> count, of failures
        self.errors = []
        self.crud = {}            # key -> (method, path, body, status, json)
        self.crud_retries = 0
        self.crud_finds = 0       # _find calls that showed the write just acknowledged
        self.crud_docs = {}       # doc id -> acknowledged writes
        self.seen = []            # ids the SSE reader saw, in order
        self.sse_reconnects = 0
        self.polled = []          # ids the long-polling reader saw, in order
        self.poll_failures = 0
        self.acked_at = {}        # log id -> time.monotonic() of its acknowledgement
        self.seen_at = {}         # log id -> when the SSE reader got it

    def fail(self, msg):
        with self.lock:
            self.errors.append(msg)

    def failure(self, what):
        with self.lock:
            self.statuses[what] = self.statuses.get(what, 0) + 1


def post_until_acked(stats, url, body, ids, deadline):
    """POSTs body until a 2xx; a 409 is an error. Returns the answer."""
    c = Client(url, timeout=10)
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        try:
            r = c.post("/v1/events", body)
        except OSError as e:
            stats.failure(type(e).__name__)
            r = None
        if r is not None and r.status in (200, 201):
            if r.status == 200 and tries > 1:
                with stats.lock:
                    stats.replayed += 1
            return r
        if r is not None:
            if r.status == 409:
                stats.fail(f"append {ids} -> 409 after {tries} tries: {r.body[:300]}")
                return None
            stats.failure(r.status)
            if r.status == 503 and (r.json or {}).get("error", {}).get(
                    "details", {}).get("commit_outcome") == "unknown":
                with stats.lock:
                    stats.unknown += 1
            if r.status != 503:
                stats.fail(f"append {ids} -> {r.status}: {r.body[:300]}")
        with stats.lock:
            stats.retries += 1
        time.sleep(0.05)
    stats.fail(f"append {ids} never acknowledged")
    return None


def writer(stats, url, t, phase, stop, deadline):
    rnd = random.Random(t * 1000 + phase)
    streams = [f"ha{phase}-w{t}-{k}" for k in range(2)]
    version = {s: 0 for s in streams}
    while not stop.is_set() and time.monotonic() < deadline:
        n = 1 if rnd.random() < 0.7 else 2
        events = []
        for _ in range(n):
            s = rnd.choice(streams)
            version[s] += 1
            events.append({"event_id": str(uuid.uuid4()),
                           "originator": {"id": s, "version": version[s]},
                           "event_type": "Ha.Written", "payload": {"t": t, "v": version[s]}})
        body = events[0] if n == 1 else {"events": events}
        ids = [e["event_id"] for e in events]
        r = post_until_acked(stats, url, body, ids, deadline)
        if r is None:
            return
        results = r.json["results"] if "results" in r.json else [r.json]
        now = time.monotonic()
        with stats.lock:
            for x in results:
                stats.acked_at.setdefault(x["log_id"], now)
            for e, x in zip(events, results):
                ev = x["event"]
                if ev["event_id"] != e["event_id"] or ev["originator"] != e["originator"]:
                    stats.errors.append(f"append answered {ev} for {e}")
                stats.acked[e["event_id"]] = (x["log_id"], ev["originator"]["id"],
                                              ev["originator"]["version"], r.status)
                stats.bodies[e["event_id"]] = body
            stats.answers[ids[0]] = results


def crud_call(stats, url, method, path, body, key, deadline):
    c = Client(url, timeout=15)
    while time.monotonic() < deadline:
        try:
            r = c.request(method, path, body=body, headers={"Idempotency-Key": key})
        except OSError as e:
            stats.failure("crud " + type(e).__name__)
            r = None
        if r is not None and r.status in (200, 201):
            with stats.lock:
                stats.crud[key] = (method, path, body, r.status, r.json)
            return r
        if r is not None and r.status != 503:
            stats.fail(f"CRUD {method} {path} key {key} -> {r.status} {r.body[:300]}")
            return None
        if r is not None:
            stats.failure("crud 503")
        with stats.lock:
            stats.crud_retries += 1
        time.sleep(0.05)
    stats.fail(f"CRUD {method} {path} key {key}: never acknowledged")
    return None


def crud_find(stats, url, base, n, deadline):
    """A _find right after an acknowledged write must show it (503 retried)."""
    c = Client(url, timeout=15)
    while time.monotonic() < deadline:
        try:
            r = c.post("/v1/entities/HaDoc/_find", {"selector": {"doc": base}})
        except OSError as e:
            stats.failure("find " + type(e).__name__)
            r = None
        if r is not None and r.status == 200:
            got = [(x["originator"]["id"], x["payload"]["n"]) for x in r.json["results"]]
            if got != [(base, n)]:
                stats.fail(f"_find of {base} after write {n} answered {got}")
            with stats.lock:
                stats.crud_finds += 1
            return
        if r is not None and r.status != 503:
            stats.fail(f"_find of {base} -> {r.status} {r.body[:300]}")
            return
        if r is not None:
            stats.failure("find 503")
        time.sleep(0.05)
    stats.fail(f"_find of {base}: never answered")


def crud_writer(stats, url, t, phase, stop, deadline):
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        i += 1
        base = f"ha{phase}-c{t}-{i}"
        r = crud_call(stats, url, "POST", "/v1/entities/HaDoc",
                      {"payload": {"n": 0, "doc": base}, "originator": {"id": base}},
                      base + "-0", deadline)
        if r is None:
            return
        crud_find(stats, url, base, 0, deadline)
        writes = 1
        for k in range(1, 4):
            r = crud_call(stats, url, "PATCH", f"/v1/entities/HaDoc/{base}", {"n": k},
                          f"{base}-{k}", deadline)
            if r is None:
                return
            crud_find(stats, url, base, k, deadline)
            writes += 1
        with stats.lock:
            stats.crud_docs[base] = writes


def sse_reader(stats, url, stop_at_id, stop, holder, first_id=1):
    """Tails /v1/logs/stream from first_id, reconnecting with Last-Event-ID,
    until it has seen stop_at_id[0] (set once writes are done) or `stop` (the
    caller then shuts the connection in holder[0] down)."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlparse(url)
    last = first_id - 1
    while not stop.is_set():
        conn = None
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            conn.request("GET", "/v1/logs/stream", headers={"Last-Event-ID": str(last)})
            holder[0] = conn
            r = conn.getresponse()
            if r.status != 200:
                stats.failure(f"sse {r.status}")
                time.sleep(0.2)
                continue
            data = None
            while not stop.is_set():
                line = r.readline()  # the body is chunked: HTTPResponse decodes it
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    lid = data["id"]
                    if lid <= last:
                        stats.fail(f"SSE reader: id {lid} after {last}")
                    last = lid
                    with stats.lock:
                        stats.seen.append(lid)
                        stats.seen_at[lid] = time.monotonic()
                    data = None
                    if stop_at_id[0] is not None and last >= stop_at_id[0]:
                        return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        finally:
            if conn:
                conn.close()
        if stop.is_set() or (stop_at_id[0] is not None and last >= stop_at_id[0]):
            return
        with stats.lock:
            stats.sse_reconnects += 1
        time.sleep(0.1)


def poll_reader(stats, url, stop_at_id, stop, first_id=1):
    """Reads /v1/logs from first_id with long polls (from_id = last + 1),
    retrying failures, until it has seen stop_at_id[0]."""
    last = first_id - 1
    c = Client(url, timeout=15)
    while not stop.is_set():
        if stop_at_id[0] is not None and last >= stop_at_id[0]:
            return
        try:
            r = c.get("/v1/logs", params={"from_id": last + 1, "size": 500, "wait": 1})
        except OSError:
            r = None
        if r is None or r.status != 200:
            stats.poll_failures += 1
            time.sleep(0.1)
            continue
        for x in r.json["results"]:
            if x["id"] <= last:
                stats.fail(f"long-polling reader: id {x['id']} after {last}")
            last = x["id"]
            stats.polled.append(last)


class Probe:
    """Asks a service for a small write every 50 ms; remembers when each
    answered 2xx, so that the first success after a time can be found."""

    def __init__(self, name, call):
        self.name = name
        self.call = call
        self.ok_at = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if self.call(i):
                    self.ok_at.append(time.monotonic())
            except OSError:
                pass
            time.sleep(0.05)

    def first_after(self, t):
        return next((x for x in self.ok_at if x >= t), None)


def full_log(url):
    c = Client(url, timeout=30)
    out, from_id = [], 1
    while True:
        r = c.get("/v1/logs", params={"from_id": from_id, "size": 1000})
        assert r.status == 200, r
        out += r.json["results"]
        if r.json["next_from_id"] > r.json["head_id"]:
            return out
        from_id = r.json["next_from_id"]


def run_phase(f, env, phase, capsys):
    es, es_r, crud, cs = env["es"], env["es_r"], env["crud"], env["cs"]
    primary = f.primary()
    assert primary is not None, f.report()
    standby = f.other(primary)
    stats = Stats()
    stop = threading.Event()
    stop_sse = threading.Event()
    stop_at = [None]
    deadline = time.monotonic() + 120
    head0 = full_log(es.url)[-1]["id"] if phase > 1 else 0

    probes = [
        Probe("event store", lambda i: Client(es.url, timeout=5).post(
            "/v1/events", {"originator": {"id": f"probe{phase}"}, "event_type": "Probe.Hit",
                           "payload": {}}).status == 201),
        Probe("CRUD store", lambda i: Client(crud.url, timeout=5).post(
            "/v1/entities/Probe", {"payload": {"i": i}}).status == 201),
        Probe("consumer store", lambda i: Client(cs.url, timeout=5).put(
            f"/v1/consumers/probe{phase}", {"offset": i}).status == 200),
    ]
    sse_conn = [None]
    sse = threading.Thread(target=sse_reader, args=(stats, es_r.url, stop_at, stop_sse,
                                                    sse_conn, head0 + 1))
    poller = threading.Thread(target=poll_reader, args=(stats, es_r.url, stop_at, stop_sse,
                                                        head0 + 1))
    sse.start()
    poller.start()
    workers = [threading.Thread(target=writer, args=(stats, es.url, t, phase, stop, deadline))
               for t in range(N_WRITERS)]
    workers += [threading.Thread(target=crud_writer, args=(stats, crud.url, t, phase, stop,
                                                           deadline)) for t in range(N_CRUD)]
    for p in probes:
        p.t.start()
    for w in workers:
        w.start()
    try:
        time.sleep(LOAD_BEFORE)
        acked_before = len(stats.acked)
        t_kill = time.monotonic()
        f.kill(primary)
        t_promoted = f.wait_promoted(standby, timeout=60)
        # every service answers again, by itself
        wait_until = t_promoted + RECOVER + 5
        while time.monotonic() < wait_until and not all(p.first_after(t_promoted)
                                                         for p in probes):
            time.sleep(0.1)
        time.sleep(LOAD_AFTER)
    finally:
        stop.set()
        for w in workers:
            w.join(150)
        for p in probes:
            p.stop.set()
            p.t.join(10)
    recovered = {p.name: (p.first_after(t_promoted) - t_promoted) if p.first_after(t_promoted)
                 else None for p in probes}

    # --- the log holds every acknowledged write exactly once -----------------
    log = full_log(es.url)
    head = log[-1]["id"]
    stop_at[0] = head
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end and not (stats.seen and stats.seen[-1] >= head and
                                            stats.polled and stats.polled[-1] >= head):
        time.sleep(0.05)
    stop_sse.set()
    if sse_conn[0] is not None and sse_conn[0].sock is not None:
        sse_conn[0].sock.shutdown(socket.SHUT_RDWR)
    sse.join(30)
    poller.join(30)
    by_event = {}
    for x in log:
        eid = x["event"].get("event_id")
        if eid:
            by_event.setdefault(eid, []).append(x["id"])
    problems = list(stats.errors)
    for eid, (lid, s, v, _) in stats.acked.items():
        got = by_event.get(eid, [])
        if got != [lid]:
            problems.append(f"event {eid} acknowledged as log id {lid}, in the log as {got}")
    # --- every resend of an acknowledged write answers its original ----------
    t_checks = time.monotonic()

    def resend(item):
        first_id, results = item
        r = Client(es.url, timeout=30).post("/v1/events", stats.bodies[first_id])
        got = r.json.get("results", [r.json]) if r.json else None
        if r.status != 200 or got != results:
            return (f"resend of {first_id} -> {r.status} {r.body[:300]} "
                    f"(first answer {results})")
        return None

    with ThreadPoolExecutor(8) as pool:
        problems += [p for p in pool.map(resend, list(stats.answers.items())) if p]
    resent = len(stats.answers)
    c = Client(es.url, timeout=30)
    # --- streams without gaps ------------------------------------------------
    streams = {}
    for eid, (lid, s, v, _) in stats.acked.items():
        streams.setdefault(s, []).append((v, eid))
    for s, evs in streams.items():
        r = c.get(f"/v1/events/{s}")
        stored = [(e["originator"]["version"], e["event_id"]) for e in r.json["events"]]
        if stored != sorted(evs):
            problems.append(f"stream {s}: stored {stored[:5]}..., acknowledged "
                            f"{sorted(evs)[:5]}... ({len(stored)} vs {len(evs)})")
    # --- CRUD: each keyed write once, every repeat answers the same ---------
    def repeat(item):
        key, (method, path, body, status, js) = item
        r = Client(crud.url, timeout=30).request(method, path, body=body,
                                                 headers={"Idempotency-Key": key})
        if (r.status, r.json) != (status, js):
            return (f"CRUD repeat {method} {path} key {key} -> {r.status} "
                    f"{r.body[:200]}, first {status} {js}")
        return None

    with ThreadPoolExecutor(8) as pool:
        problems += [p for p in pool.map(repeat, list(stats.crud.items())) if p]
    cc = Client(crud.url, timeout=30)
    for doc, writes in stats.crud_docs.items():
        r = cc.get(f"/v1/entities/HaDoc/{doc}/history")
        if r.status != 200 or [v["version"] for v in r.json["versions"]] != list(
                range(1, writes + 1)):
            problems.append(f"CRUD document {doc}: history {r.body[:300]}, "
                            f"{writes} acknowledged writes")
    # --- the CRUD store's query index (on the formation, read on the
    # standby) holds every acknowledged write, once ------------------------
    indexed, token = {}, None
    while True:
        r = cc.post("/v1/entities/HaDoc/_find", {"selector": {}, "limit": 1000,
                                                 "page_token": token})
        if r.status != 200:
            problems.append(f"CRUD _find after the failover -> {r.status} {r.body[:300]}")
            break
        for x in r.json["results"]:
            if x["originator"]["id"] in indexed:
                problems.append(f"_find answered {x['originator']['id']} twice")
            indexed[x["originator"]["id"]] = (x["originator"]["version"], x["payload"]["n"])
        token = r.json["next_page_token"]
        if token is None:
            break
    for doc, writes in stats.crud_docs.items():
        if indexed.get(doc) != (writes, writes - 1):
            problems.append(f"CRUD document {doc}: the query index holds "
                            f"{indexed.get(doc)}, acknowledged {writes} writes")
    # --- the SSE reader saw the whole log, in order --------------------------
    ids = [x["id"] for x in log if x["id"] > head0]
    for name, seen in (("SSE reader", stats.seen), ("long-polling reader", stats.polled)):
        if seen != ids:
            missing = sorted(set(ids) - set(seen))
            problems.append(f"{name} saw {len(seen)} entries, the log has {len(ids)}; "
                            f"missing {missing[:20]}, in order: "
                            f"{all(a < b for a, b in zip(seen, seen[1:]))}")
    if stats.sse_reconnects:
        problems.append(f"the SSE stream ended {stats.sse_reconnects} times")
    # from acknowledgement (by the writers' replica) to the SSE reader (on the
    # readers' replica, reading from the standby, woken by NOTIFY)
    delays = sorted(max(0.0, stats.seen_at[i] - t) for i, t in stats.acked_at.items()
                    if i in stats.seen_at)
    if delays and delays[-1] > 5.0:
        problems.append(f"an entry reached the SSE reader {delays[-1]:.2f}s after its "
                        "acknowledgement")
    # --- the metrics consumer reaches the head -------------------------------
    t0 = time.monotonic()
    offset = None
    while time.monotonic() - t0 < 30:
        r = Client(cs.url, timeout=5).get("/v1/consumers/metrics-consumer")
        offset = r.json["offset"] if r.status == 200 else None
        if offset is not None and offset >= head:
            break
        time.sleep(0.2)
    consumer_lag = time.monotonic() - t0
    if offset is None or offset < head:
        problems.append(f"metrics consumer at offset {offset}, log head {head}")
    t_checks = time.monotonic() - t_checks
    for name, dt in recovered.items():
        if dt is None or dt > RECOVER:
            problems.append(f"{name} answered again {dt} s after the promotion "
                            f"(SPEC: within {RECOVER} s)")

    with capsys.disabled():
        print(f"\n[failover {phase}] (t+{time.monotonic() - T0:.0f}s) {primary.name} killed after {LOAD_BEFORE:.0f}s of load "
              f"({acked_before} events acknowledged), {standby.name} promoted "
              f"{t_promoted - t_kill:.2f}s later")
        print(f"[failover {phase}] recovered after the promotion: " + ", ".join(
            f"{n} {dt:.2f}s" if dt is not None else f"{n} never" for n, dt in
            recovered.items()))
        print(f"[failover {phase}] events acknowledged {len(stats.acked)} "
              f"(appends {len(stats.answers)}), retries {stats.retries}, 503s with "
              f"commit_outcome unknown {stats.unknown}, resends answered 200 (had committed) "
              f"{stats.replayed}, failures seen {stats.statuses}")
        print(f"[failover {phase}] resent {resent} acknowledged appends: all 200 with the "
              f"first answer: {not any(p.startswith('resend') for p in problems)}; "
              f"{len(streams)} streams checked")
        print(f"[failover {phase}] CRUD keyed writes {len(stats.crud)} on "
              f"{len(stats.crud_docs)} documents, retries {stats.crud_retries}, each followed by "
              f"a _find that showed it ({stats.crud_finds}); afterwards the query index (read "
              f"on the standby) answered {len(indexed)} documents")
        print(f"[failover {phase}] readers on the second replica (reads on the standby): "
              f"SSE {len(stats.seen)} of {len(ids)} entries in order, "
              f"{stats.sse_reconnects} reconnects, ack-to-SSE delay median "
              f"{delays[len(delays) // 2] * 1e3:.0f} ms p99 "
              f"{delays[int(len(delays) * 0.99)] * 1e3:.0f} ms max {delays[-1] * 1e3:.0f} ms; "
              f"long polls {len(stats.polled)} entries, "
              f"{stats.poll_failures} failed polls; metrics consumer at the head {head} "
              f"{consumer_lag:.2f}s after the writes; checks took {t_checks:.1f}s")
    assert not problems, "\n".join(problems[:30]) + "\n" + f.report()[-4000:] + \
        "\n--- event store ---\n" + es.log()[-4000:]
    return stats


def test_failover_and_back(formation, services, capsys):
    f = formation
    n1, n2 = f.nodes
    write_url = f.url("read-write")
    read_url = f.url("prefer-standby", order=[n2, n1])
    cs_port = free_port()
    es_env = {"ESKIT_DATABASE_URL": write_url, "ESKIT_DATABASE_READ_URL": read_url}
    es = services("event-store", es_env)
    es_r = services("event-store", es_env)
    cs = services("consumer-store", {"ESKIT_DATABASE_URL": write_url}, port=cs_port)
    # the CRUD store's query index on the formation too, read on the standby
    crud = services("crud-store", {"ESKIT_EVENT_STORE_URL": es.url,
                                   "ESKIT_DATABASE_URL": write_url,
                                   "ESKIT_DATABASE_READ_URL": read_url})
    for s in (es, es_r, cs, crud):
        assert s.wait_ready(), s.log()
    mc = services("metrics-consumer", {"ESKIT_EVENT_STORE_URL": es_r.url,
                                       "ESKIT_CRUD_STORE_URL": crud.url,
                                       "ESKIT_CONSUMER_STORE_URL": cs.url,
                                       "ESKIT_CONSUMER_POLL_WAIT": "1"})
    env = {"es": es, "es_r": es_r, "crud": crud, "cs": cs, "mc": mc}
    with capsys.disabled():
        print(f"\n[formation] (t+{time.monotonic() - T0:.0f}s) " +
              "; ".join(text for _, text in f.events))

    run_phase(f, env, 1, capsys)
    old = next(n for n in f.nodes if n is not f.primary())
    t0 = time.monotonic()
    f.rejoin(old)
    with capsys.disabled():
        print(f"[rejoin] (t+{time.monotonic() - T0:.0f}s) {old.name} is a synchronous secondary again after "
              f"{time.monotonic() - t0:.1f}s")
    run_phase(f, env, 2, capsys)
    # no service was restarted
    for s in (es, es_r, cs, crud, mc):
        assert s.proc.poll() is None, s.log()
    # the readers' replica read from the standby (its reads were counted)
    for name, svc in (("second replica", es_r), ("CRUD store", crud)):
        m = Client(svc.url).get("/metrics").body
        standby_reads = sum(float(line.split()[-1]) for line in m.splitlines()
                            if line.startswith('eskit_db_reads_total{on="standby"}'))
        with capsys.disabled():
            print(f"[reads] {name}: " + ", ".join(
                line for line in m.splitlines() if line.startswith(
                    ("eskit_db_reads_total", "eskit_standby_fallbacks_total"))))
        assert standby_reads > 0, (name, m)
